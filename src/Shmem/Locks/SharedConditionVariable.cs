using System.Runtime.InteropServices;
using Postmaster.Shmem.Errors;

namespace Postmaster.Shmem.Locks;

/// <summary>
/// A condition variable in shared memory: a process waits, with an <see cref="LWLockHandle"/> held, until a
/// predicate over shared state holds; another process changes that state under the same lock and calls
/// <see cref="Signal"/> or <see cref="Broadcast"/>.
/// <para><b>Algorithm.</b> A sequence-number futex. The waiter, holding the lock, evaluates the predicate; if false it
/// counts itself in <see cref="_waiters"/>, reads <see cref="_sequence"/>, releases the lock and sleeps with
/// FUTEX_WAIT expecting that sequence. Signal/Broadcast increment the sequence (a full fence) and, only if someone is
/// counted, FUTEX_WAKE one/all. A signal after the waiter read the sequence changes it, so the sleep returns at once:
/// no lost wake-ups. Woken waiters re-take the lock in the mode they held it and re-check the predicate (wake-ups may
/// be spurious; Signal may wake a waiter whose predicate is still false, so use Broadcast when waiters wait for
/// different things). A waiter that dies leaves <see cref="_waiters"/> too high: only extra wake syscalls follow.</para>
/// <para>Use it only in place (<c>region.Ref&lt;SharedConditionVariable&gt;(offset)</c>); zeroed memory is a valid,
/// empty condition variable.</para>
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct SharedConditionVariable
{
    public const int Size = 8;

    /// <summary>The futex word: bumped by every Signal/Broadcast (wraps; only inequality matters).</summary>
    [FieldOffset(0)] private int _sequence;

    /// <summary>Processes between "counted" and "woken" in <see cref="Wait(LockOwner, in LWLockHandle, Func{bool}, TimeSpan)"/>.</summary>
    [FieldOffset(4)] private int _waiters;

    /// <summary>
    /// Waits until <paramref name="predicate"/> (evaluated with <paramref name="lwlock"/> held) returns true, or until
    /// <paramref name="timeout"/> passes. <paramref name="owner"/> must hold <paramref name="lwlock"/>; it holds it
    /// again, in the same mode, when this returns (or throws): re-taking it after a wake-up has no bound, so the
    /// supervisor, which takes no shared locks, does not use this. Returns the predicate's last value (false only on
    /// timeout).
    /// </summary>
    public bool Wait(LockOwner owner, in LWLockHandle lwlock, Func<bool> predicate, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        LWLockMode mode = owner.HeldMode(lwlock) ??
            throw new LWLockException($"lock {owner.Describe(lwlock)} is not held",
                "A condition variable is waited on with its lock held.");
        long deadline = Deadline.After(timeout);
        while (!predicate())
        {
            if (deadline != Deadline.Infinite && Deadline.RemainingNanoseconds(deadline) <= 0)
                return false;
            Interlocked.Increment(ref _waiters);
            int sequence = Volatile.Read(ref _sequence); // after counting ourselves: see the class summary
            owner.Release(lwlock);
            try
            {
                Futex.Wait(ref _sequence, sequence, deadline); // any outcome: re-check under the lock
            }
            finally
            {
                Interlocked.Decrement(ref _waiters);
                owner.Acquire(lwlock, mode);
            }
        }
        return true;
    }

    /// <summary>Waits with no time bound (see the timeout overload).</summary>
    public void Wait(LockOwner owner, in LWLockHandle lwlock, Func<bool> predicate) =>
        Wait(owner, lwlock, predicate, Timeout.InfiniteTimeSpan);

    /// <summary>
    /// The first step of a wait split in three (PostgreSQL's ConditionVariablePrepareToSleep / ConditionVariableSleep /
    /// ConditionVariableCancelSleep), for callers that must do something of their own between releasing the lock and
    /// sleeping, such as leaving a process-local gate that serialises their <see cref="LockOwner"/> between threads.
    /// Call it with the lock held and the predicate found false; it counts the caller as a waiter and returns the
    /// ticket to pass to <see cref="Sleep"/>. Then release the lock, <see cref="Sleep"/>, and call
    /// <see cref="CancelSleep"/> exactly once whatever happens (a try/finally).
    /// </summary>
    public int PrepareToSleep()
    {
        Interlocked.Increment(ref _waiters);
        return Volatile.Read(ref _sequence); // after counting ourselves: see the class summary
    }

    /// <summary>Sleeps until a Signal/Broadcast after <see cref="PrepareToSleep"/> returned <paramref name="ticket"/>,
    /// or until <paramref name="timeout"/>. Returns at once if one already happened. Wake-ups may be spurious: re-check
    /// the predicate under the lock. False when the timeout passed.</summary>
    public bool Sleep(int ticket, TimeSpan timeout) =>
        Futex.Wait(ref _sequence, ticket, Deadline.After(timeout)) != FutexWaitResult.TimedOut;

    /// <summary>Ends a wait begun with <see cref="PrepareToSleep"/>: no longer counted as a waiter.</summary>
    public void CancelSleep() => Interlocked.Decrement(ref _waiters);

    /// <summary>Processes counted as waiting now: a racy snapshot for inspection (a waiter that died stays counted).</summary>
    public int Waiters => Volatile.Read(ref _waiters);

    /// <summary>Wakes one waiter. Call after changing the state, with or without the lock held.</summary>
    public void Signal() => Notify(1);

    /// <summary>Wakes every waiter.</summary>
    public void Broadcast() => Notify(Futex.WakeAllCount);

    private void Notify(int count)
    {
        Interlocked.Increment(ref _sequence);
        if (Volatile.Read(ref _waiters) > 0)
            Futex.Wake(ref _sequence, count);
    }
}
