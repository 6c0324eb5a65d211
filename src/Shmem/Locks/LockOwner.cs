using System.Diagnostics;
using System.Runtime.CompilerServices;
using Postmaster.Shmem.Errors;

namespace Postmaster.Shmem.Locks;

/// <summary>
/// One process's (strictly: one slot's) lock context: the API for acquiring and releasing lightweight locks, plus the
/// bookkeeping that PostgreSQL keeps in process-local held_lwlocks[] but which lives here in the slot's shared
/// <see cref="LWLockOwnerRecord"/>, so the supervisor can see what a dead process held.
/// <para><b>Getting one.</b> Attach the <see cref="LWLockOwnerTable"/> and call
/// <see cref="LWLockOwnerTable.CreateOwner"/> with the slot the launcher assigned (the backend issue assigns slots;
/// tests pass slot numbers explicitly). Keep it for the life of the process and <see cref="Dispose"/> it on the
/// exit path, which releases everything still held.</para>
/// <para><b>Threads.</b> An owner is single-threaded, like a PostgreSQL backend: its record has one writer. A process
/// whose threads take locks independently uses one slot per thread.</para>
/// <para><b>Ordering.</b> A lock is recorded (phase <see cref="HeldLockPhase.Acquiring"/>) BEFORE the atomic acquire
/// attempt and removed AFTER the release, so a process killed between the CAS and the bookkeeping still shows up as a
/// possible holder. That is conservative: the supervisor then restarts rather than trusting the lock.</para>
/// <para><b>Errors.</b> Acquiring a lock this owner already holds, holding more than <see cref="MaxHeldLocks"/>, or
/// releasing a lock not held throws <see cref="LWLockException"/>; on any error the caller's error path calls
/// <see cref="ReleaseAll"/> (PostgreSQL's LWLockReleaseAll). The supervisor never waits without a bound: it uses
/// <see cref="TryAcquire"/> or the timeout overload of <see cref="Acquire(in LWLockHandle, LWLockMode, TimeSpan)"/>.</para>
/// </summary>
public sealed unsafe class LockOwner : IDisposable
{
    /// <summary>Most locks one owner holds at once (PostgreSQL's MAX_SIMUL_LWLOCKS).</summary>
    public const int MaxHeldLocks = 200;

    /// <summary>"No slot", in a lock's exclusive-owner field.</summary>
    public const int NoSlot = -1;

    private readonly LWLockOwnerRecord* _record;
    private readonly LWLockTrancheTable? _tranches;
    private readonly int _threadId = Environment.CurrentManagedThreadId;

    /// <summary>What this owner writes into a lock's <see cref="LWLock.ExclusiveOwner"/> (pid and slot).</summary>
    private readonly long _exclusiveOwner;

    /// <summary>This process's addresses of the recorded locks, parallel to the record's entries: shared memory holds
    /// offsets only, and <see cref="ReleaseAll"/> needs the addresses.</summary>
    private readonly nint[] _addresses = new nint[MaxHeldLocks];

    private bool _disposed;

    internal LockOwner(LWLockOwnerRecord* record, int slot, int pid, LWLockTrancheTable? tranches)
    {
        _record = record;
        _tranches = tranches;
        Slot = slot;
        Pid = pid;
        _exclusiveOwner = LWLock.MakeExclusiveOwner(pid, slot);
    }

    public int Slot { get; }

    public int Pid { get; }

    /// <summary>Locks currently held (or being acquired).</summary>
    public int HeldCount => _record->HeldCount;

    public int CriticalSectionDepth => _record->CriticalSectionDepth;

    /// <summary>Whether a contended acquire spins briefly (<see cref="LWLockOps.SpinBudget"/>) before sleeping.
    /// Always true in production; the benchmarks turn it off to measure the pure futex sleep/wake path.</summary>
    internal bool SpinBeforeSleep { get; set; } = true;

    /// <summary>Waits as long as needed for <paramref name="lwlock"/> in <paramref name="mode"/>. Not for the
    /// supervisor (see the class summary).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Acquire(in LWLockHandle lwlock, LWLockMode mode)
    {
        var record = _record;
        LWLock* l = lwlock.Address;
        int index = RecordAcquiring(record, l, lwlock, mode);
        if (!LWLockOps.TryAcquireFast(ref l->State, mode))
            AcquireSlow(lwlock, index, mode, Deadline.Infinite);
        MarkHeld(record, l, index, mode);
    }

    /// <summary>Waits at most <paramref name="timeout"/> (<see cref="Timeout.InfiniteTimeSpan"/> = no bound). True
    /// when acquired; false on timeout, with nothing held or recorded.</summary>
    public bool Acquire(in LWLockHandle lwlock, LWLockMode mode, TimeSpan timeout)
    {
        long deadline = Deadline.After(timeout);
        var record = _record;
        LWLock* l = lwlock.Address;
        int index = RecordAcquiring(record, l, lwlock, mode);
        if (!LWLockOps.TryAcquireFast(ref l->State, mode) && !AcquireSlow(lwlock, index, mode, deadline))
            return false;
        MarkHeld(record, l, index, mode);
        return true;
    }

    /// <summary>Conditional acquire: takes the lock only if it is available now; never sleeps. Shared mode is
    /// unavailable while a writer waits (so conditional readers cannot starve writers either).</summary>
    public bool TryAcquire(in LWLockHandle lwlock, LWLockMode mode)
    {
        var record = _record;
        LWLock* l = lwlock.Address;
        int index = RecordAcquiring(record, l, lwlock, mode);
        if (!LWLockOps.TryAcquire(ref l->State, mode))
        {
            Forget(index);
            return false;
        }
        MarkHeld(record, l, index, mode);
        return true;
    }

    /// <summary>Releases <paramref name="lwlock"/>, in whichever mode it is held. Releasing the most recently
    /// acquired lock first is cheapest; any order works.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Release(in LWLockHandle lwlock)
    {
        // Everything is read into locals before the first store: the JIT would otherwise reload fields and the handle
        // after each store through a pointer (it cannot prove they do not alias).
        var record = _record;
        LWLock* l = lwlock.Address;
        long offset = lwlock.Offset;
        uint segmentId = lwlock.SegmentId;
        int count = record->HeldCount;
        int index = count - 1;
        if (index < 0 || !LWLockOwnerRecord.HeldAt(record, index).Is(offset, segmentId))
            index = IndexOfHeld(lwlock, count);
        ReleaseAt(record, l, index, count);
    }

    /// <summary>Acquires <paramref name="lwlock"/> (waiting as long as needed) and returns a scoped hold whose
    /// <see cref="LWLockHold.Dispose"/> releases it.</summary>
    public LWLockHold Hold(in LWLockHandle lwlock, LWLockMode mode)
    {
        Acquire(lwlock, mode);
        return new LWLockHold(this, lwlock, 0, 0);
    }

    internal bool IsHoldCurrent(int entry, long sequence) => false;

    internal void ReleaseHold(in LWLockHandle lwlock, int entry, long sequence) => Release(lwlock);

    /// <summary>Releases everything this owner holds, newest first, and drops entries of interrupted acquires.
    /// For error and exit paths: never throws for an empty record.</summary>
    public void ReleaseAll()
    {
        for (int count = _record->HeldCount; count > 0; count--)
        {
            if (LWLockOwnerRecord.HeldAt(_record, count - 1).Phase == HeldLockPhase.Held)
                ReleaseAt(_record, (LWLock*)_addresses[count - 1], count - 1, count);
            else
                Forget(count - 1);
        }
    }

    /// <summary>True when this owner holds <paramref name="lwlock"/> (in either mode).</summary>
    public bool Holds(in LWLockHandle lwlock) => HeldMode(lwlock) is not null;

    /// <summary>The mode in which this owner holds <paramref name="lwlock"/>, or null.</summary>
    public LWLockMode? HeldMode(in LWLockHandle lwlock)
    {
        int count = _record->HeldCount;
        for (int i = count - 1; i >= 0; i--)
        {
            ref var e = ref LWLockOwnerRecord.HeldAt(_record, i);
            if (e.Is(lwlock) && e.Phase == HeldLockPhase.Held)
                return e.Mode;
        }
        return null;
    }

    /// <summary>Marks the start of code that must not be interrupted by death (shared state is inconsistent until
    /// the matching <see cref="ExitCriticalSection"/>); the supervisor escalates to a full restart when a process
    /// dies with depth &gt; 0. Nests.</summary>
    public void EnterCriticalSection() => Volatile.Write(ref _record->CriticalSectionDepth, _record->CriticalSectionDepth + 1);

    public void ExitCriticalSection()
    {
        int depth = _record->CriticalSectionDepth;
        if (depth <= 0)
            throw new InvalidOperationException("ExitCriticalSection without a matching EnterCriticalSection");
        Volatile.Write(ref _record->CriticalSectionDepth, depth - 1);
    }

    /// <summary>The lock's name for messages: "ShmemIndex" (segment 0 offset 128).</summary>
    public string Describe(in LWLockHandle lwlock) =>
        $"\"{_tranches?.TrancheName(lwlock.TrancheId) ?? $"tranche {lwlock.TrancheId}"}\" ({lwlock.Id})";

    /// <summary>Exit path: releases everything still held and frees the slot. Idempotent; the owner is unusable
    /// afterwards.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        ReleaseAll();
        _record->CriticalSectionDepth = 0;
        Volatile.Write(ref _record->Pid, 0);
        _disposed = true;
    }

    /// <summary>Appends an <see cref="HeldLockPhase.Acquiring"/> entry and publishes it (the count) before the
    /// caller's CAS; returns its index. Validates everything first, so a throw leaves no trace.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int RecordAcquiring(LWLockOwnerRecord* record, LWLock* l, in LWLockHandle lwlock, LWLockMode mode)
    {
        Debug.Assert(Environment.CurrentManagedThreadId == _threadId,
            "a LockOwner is single-threaded: give each thread that takes locks its own slot");
        int count = record->HeldCount;
        if (count != 0 || _disposed || l == null || (uint)((byte)mode - 1) > 1u) // 1u: Shared (1), Exclusive (2) pass
            CheckCanRecord(lwlock, mode, count);
        // Loads first, stores after (see Release).
        long offset = lwlock.Offset;
        ulong tag = HeldLockEntry.WithModeAndPhase(lwlock.RecordTag, mode, HeldLockPhase.Acquiring);
        var addresses = _addresses;
        ref var e = ref LWLockOwnerRecord.HeldAt(record, count);
        e.Offset = offset;
        e.Tag = tag;
        addresses[count] = (nint)l;
        // Ordering: the entry is visible (program order; the CAS that follows is a full fence) before we try.
        Volatile.Write(ref record->HeldCount, count + 1);
        return count;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void MarkHeld(LWLockOwnerRecord* record, LWLock* l, int index, LWLockMode mode)
    {
        if (mode == LWLockMode.Exclusive)
            l->ExclusiveOwner = _exclusiveOwner;
        LWLockOwnerRecord.HeldAt(record, index).Phase = HeldLockPhase.Held;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ReleaseAt(LWLockOwnerRecord* record, LWLock* l, int index, int count)
    {
        ref var e = ref LWLockOwnerRecord.HeldAt(record, index);
        Debug.Assert(e.Phase == HeldLockPhase.Held, "releasing a lock whose acquisition has not completed");
        Debug.Assert((nint)l == _addresses[index], "owner record and local addresses disagree");
        LWLockMode mode = e.Mode;
        if (mode == LWLockMode.Exclusive)
            l->ExclusiveOwner = LWLock.NoExclusiveOwner; // cleared before the release: afterwards the next holder owns it
        LWLockOps.Release(ref l->State, mode);
        if (index == count - 1)
            Volatile.Write(ref record->HeldCount, index); // the common LIFO case: pop
        else
            RemoveAt(index, count);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool AcquireSlow(in LWLockHandle lwlock, int index, LWLockMode mode, long deadline)
    {
        bool acquired = false;
        try
        {
            acquired = LWLockOps.AcquireSlow(ref lwlock.Lock.State, mode, deadline, SpinBeforeSleep);
        }
        finally
        {
            if (!acquired)
                Forget(index); // timed out or failed: LWLockOps left the word as if we had never tried
        }
        return acquired;
    }

    /// <summary>Drops the newest entry, which must be <paramref name="index"/> (an acquire that did not happen).</summary>
    private void Forget(int index)
    {
        Debug.Assert(index == _record->HeldCount - 1, "only the newest entry can be an acquire in progress");
        Volatile.Write(ref _record->HeldCount, index);
    }

    /// <summary>Out-of-order release: entries above <paramref name="index"/> move down one place, then the count
    /// shrinks. A death mid-move leaves a duplicate entry, never a missing one.</summary>
    private void RemoveAt(int index, int count)
    {
        for (int i = index; i < count - 1; i++)
        {
            LWLockOwnerRecord.HeldAt(_record, i) = LWLockOwnerRecord.HeldAt(_record, i + 1);
            _addresses[i] = _addresses[i + 1];
        }
        Volatile.Write(ref _record->HeldCount, count - 1);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private int IndexOfHeld(in LWLockHandle lwlock, int count)
    {
        for (int i = count - 1; i >= 0; i--)
            if (LWLockOwnerRecord.HeldAt(_record, i).Is(lwlock))
                return i;
        throw new LWLockException($"lock {Describe(lwlock)} is not held", $"Owner slot {Slot} (process {Pid}) holds {count} locks.");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void CheckCanRecord(in LWLockHandle lwlock, LWLockMode mode, int count)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (mode is not (LWLockMode.Shared or LWLockMode.Exclusive))
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "a lock mode is Shared or Exclusive");
        if (lwlock.IsNull)
            throw new ArgumentException("the lock handle is empty", nameof(lwlock));
        for (int i = 0; i < count; i++)
        {
            if (LWLockOwnerRecord.HeldAt(_record, i).Is(lwlock))
                throw new LWLockException($"lock {Describe(lwlock)} is already held by this process",
                    $"Requested {mode} mode while holding it in {LWLockOwnerRecord.HeldAt(_record, i).Mode} mode (owner slot {Slot}).",
                    "Lightweight locks are not re-entrant: acquiring a held lock again would wait for ever.");
        }
        if (count >= MaxHeldLocks)
            throw new LWLockException("too many LWLocks taken",
                $"Owner slot {Slot} (process {Pid}) already holds {count} locks, the limit (MaxHeldLocks); " +
                $"could not take lock {Describe(lwlock)}.");
    }
}
