using System.Runtime.CompilerServices;
using Postmaster.Shmem.Errors;
using Engine = Postmaster.Shmem.Locks;

namespace Postmaster.Workers;

/// <summary>
/// This backend's lightweight-lock operations (<see cref="WorkerContext.Locks"/>; PostgreSQL's LWLockAcquire,
/// LWLockConditionalAcquire, LWLockRelease). Every lock this process holds is recorded in shared memory before it is
/// taken, so the postmaster knows what a process that died held: a backend that dies holding a lock, or inside a
/// critical section, makes the postmaster restart every backend and rebuild shared memory (PostgreSQL's crash
/// restart); one that held nothing is cleaned up alone while the others keep running.
/// <para><b>Threads.</b> Safe from any thread of the worker. The holder of a lock is the thread that acquired it: two
/// threads of one process contending for a lock behave like two processes (the second waits). A hold may end on
/// another thread (async code that acquires before an <c>await</c>): the <see cref="LWLockHold"/> from
/// <see cref="Hold"/> releases exactly its hold from anywhere, and <see cref="Release"/> on a thread that does not hold
/// the lock releases one hold of it by this process.</para>
/// <para><b>Rules</b> (PostgreSQL's): locks are not re-entrant (a thread acquiring one it holds gets
/// <see cref="LWLockException"/>: it would wait for ever), at most <see cref="MaxHeldLocks"/> at once in the process,
/// hold them for short stretches of memory access only, and release what you take (<see cref="Hold"/> does it for
/// you). Whatever is still held at exit is released by the exit path, with a WARNING naming it. Errors:
/// <see cref="LWLockException"/> for misuse (nothing has changed when it is thrown), <see cref="ArgumentException"/>
/// for an empty handle or an undefined mode.</para>
/// </summary>
public sealed class WorkerLocks
{
    /// <summary>Most locks one process holds at once, over all its threads (PostgreSQL's MAX_SIMUL_LWLOCKS); one more throws
    /// <see cref="LWLockException"/> "too many LWLocks taken".</summary>
    public const int MaxHeldLocks = Engine.LockOwner.MaxHeldLocks;

    private readonly Engine.LockOwner _owner;

    internal WorkerLocks(Engine.LockOwner owner) => _owner = owner;

    /// <summary>The engine's lock owner behind this facade.</summary>
    internal Engine.LockOwner Owner => _owner;

    /// <summary>Takes <paramref name="lwlock"/> in <paramref name="mode"/>, waiting as long as needed.</summary>
    /// <param name="lwlock">The lock.</param>
    /// <param name="mode">Shared or exclusive.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Acquire(in LWLockHandle lwlock, LWLockMode mode) => _owner.Acquire(in lwlock.Inner, (Engine.LWLockMode)mode);

    /// <summary>Takes <paramref name="lwlock"/> in <paramref name="mode"/>, waiting at most <paramref name="timeout"/>
    /// (<see cref="Timeout.InfiniteTimeSpan"/>: no limit).</summary>
    /// <param name="lwlock">The lock.</param>
    /// <param name="mode">Shared or exclusive.</param>
    /// <param name="timeout">The longest wait.</param>
    /// <returns>True when acquired; false on timeout, with nothing held.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Acquire(in LWLockHandle lwlock, LWLockMode mode, TimeSpan timeout) =>
        _owner.Acquire(in lwlock.Inner, (Engine.LWLockMode)mode, timeout);

    /// <summary>Takes <paramref name="lwlock"/> only if it is available now; never sleeps (PostgreSQL's
    /// LWLockConditionalAcquire). Shared mode is unavailable while a writer waits.</summary>
    /// <param name="lwlock">The lock.</param>
    /// <param name="mode">Shared or exclusive.</param>
    /// <returns>True when acquired.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryAcquire(in LWLockHandle lwlock, LWLockMode mode) => _owner.TryAcquire(in lwlock.Inner, (Engine.LWLockMode)mode);

    /// <summary>Releases <paramref name="lwlock"/>, in whichever mode it is held: the calling thread's hold, else one
    /// hold of it by another thread of this process. Any order works; releasing the most recently taken lock first is
    /// cheapest. Releasing a lock this process does not hold throws <see cref="LWLockException"/>.</summary>
    /// <param name="lwlock">The lock.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Release(in LWLockHandle lwlock) => _owner.Release(in lwlock.Inner);

    /// <summary>Takes <paramref name="lwlock"/> (waiting as long as needed) and returns a hold that releases it when
    /// disposed: <c>using var held = context.Locks.Hold(lk, LWLockMode.Exclusive);</c>.</summary>
    /// <param name="lwlock">The lock.</param>
    /// <param name="mode">Shared or exclusive.</param>
    /// <returns>The hold; dispose it exactly once.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public LWLockHold Hold(in LWLockHandle lwlock, LWLockMode mode) => new(_owner.Hold(in lwlock.Inner, (Engine.LWLockMode)mode));

    /// <summary>True when this process holds <paramref name="lwlock"/> (in either mode, on any thread).</summary>
    /// <param name="lwlock">The lock.</param>
    public bool Holds(in LWLockHandle lwlock) => _owner.Holds(in lwlock.Inner);

    /// <summary>Marks the start of code that must not be interrupted by death: shared state is inconsistent until the
    /// matching <see cref="ExitCriticalSection"/>. A backend that dies inside one makes the postmaster restart every
    /// backend, as when it dies holding a lock. Nests.</summary>
    public void EnterCriticalSection() => _owner.EnterCriticalSection();

    /// <summary>Ends the innermost <see cref="EnterCriticalSection"/>; without one it throws
    /// <see cref="InvalidOperationException"/>.</summary>
    public void ExitCriticalSection() => _owner.ExitCriticalSection();

    /// <summary>The lock's name for messages, e.g. <c>"my counter" (segment 0 offset 4096)</c>.</summary>
    /// <param name="lwlock">The lock.</param>
    public string Describe(in LWLockHandle lwlock) => _owner.Describe(in lwlock.Inner);
}
