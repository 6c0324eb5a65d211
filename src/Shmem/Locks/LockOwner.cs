using System.Runtime.CompilerServices;
using Postmaster.Shmem.Errors;

namespace Postmaster.Shmem.Locks;

/// <summary>
/// One process's (strictly: one slot's) lock context: the API for acquiring and releasing lightweight locks, plus the
/// bookkeeping that PostgreSQL keeps in process-local held_lwlocks[] but which lives here in the slot's shared
/// <see cref="LWLockOwnerRecord"/>, so the supervisor can see what a dead process held.
/// <para><b>Getting one.</b> Attach the <see cref="LWLockOwnerTable"/> and call
/// <see cref="LWLockOwnerTable.CreateOwner"/> with the slot the launcher assigned. Keep it for the life of the process
/// and <see cref="Dispose"/> it on the exit path, which releases everything still held.</para>
/// <para><b>Threads.</b> Every member is safe from any thread. The <i>holder</i> of a lock is the thread that acquired
/// it: two threads of one process contending for a lock behave like two processes (the second waits), and a thread
/// acquiring a lock it already holds gets an <see cref="LWLockException"/> (locks are not re-entrant: it would wait for
/// ever). A hold may be released by another thread (code that acquired before an <c>await</c> and releases on the
/// continuation): <see cref="Hold"/> returns a token that releases exactly that hold from anywhere, and
/// <see cref="Release"/> from a thread that does not hold the lock releases one hold of it by this process.</para>
/// <para><b>The record.</b> Each hold occupies one entry of the slot's shared record. A thread claims entries in its
/// own lane (a run of entries only it claims, so plain stores do) or, without one or beyond it, in the overflow area
/// with a CAS; no process-local lock is taken. An entry is written (phase <see cref="HeldLockPhase.Acquiring"/>) BEFORE the atomic acquire attempt
/// and freed AFTER the release, so a process killed on any thread between the CAS and the bookkeeping still shows up as
/// a possible holder. That is conservative: the supervisor then restarts rather than trusting the lock. Process-local
/// arrays parallel to the entries hold what shared memory must not (addresses) or need not (holder, sequence).</para>
/// <para><b>Errors.</b> Acquiring a lock the calling thread already holds, holding more than <see cref="MaxHeldLocks"/>
/// locks in the process, or releasing a lock not held throws <see cref="LWLockException"/>. The supervisor never
/// waits without a bound: it uses <see cref="TryAcquire"/> or the timeout overload of
/// <see cref="Acquire(in LWLockHandle, LWLockMode, TimeSpan)"/>.</para>
/// </summary>
internal sealed unsafe class LockOwner : IDisposable
{
    /// <summary>Most locks one process holds (or is acquiring) at once, over all its threads (PostgreSQL's
    /// MAX_SIMUL_LWLOCKS, per backend).</summary>
    public const int MaxHeldLocks = 200;

    /// <summary>"No slot", in a lock's exclusive-owner field.</summary>
    public const int NoSlot = -1;

    /// <summary>Entries per lane: a thread's own run of entries, which only it claims (with plain stores: no other
    /// thread claims there, others only free). 8 entries of 16 bytes = two cache lines, never shared between lanes.</summary>
    private const int LaneSize = 8;

    /// <summary>Lanes in a record (the first LaneCount × LaneSize entries); the rest is the overflow area, where a
    /// thread without a lane, or with a full one, claims entries with a CAS.</summary>
    private const int LaneCount = 16;

    private const int OverflowStart = LaneSize * LaneCount;

    [ThreadStatic] private static Holder? t_holder;        // the calling thread's holder of the owner used last
    [ThreadStatic] private static Holder[]? t_otherHolders; // its holders of other owners (tests use several)

    private readonly LWLockOwnerRecord* _record;
    private readonly LWLockTrancheTable? _tranches;

    /// <summary>What this owner writes into a lock's <see cref="LWLock.ExclusiveOwner"/> (pid and slot).</summary>
    private readonly long _exclusiveOwner;

    /// <summary>Per entry, what this process keeps beside the shared entry (one array: one bounds check, one cache line
    /// per entry on the fast path).</summary>
    private readonly EntryLocal[] _local = new EntryLocal[MaxHeldLocks];

    /// <summary>Per lane, the <see cref="Holder.Id"/> that owns it; 0 = free. Claimed by CAS when a thread first takes a
    /// lock through this owner; returned when its holder is collected with the lane empty, or taken back by a new
    /// thread once its own thread has ended (<see cref="TakeLane"/>).</summary>
    private readonly int[] _laneOwner = new int[LaneCount];

    /// <summary>Per lane, the thread that owns it: a lane whose thread has ended and whose entries are all free is taken
    /// back when a new thread finds none free (without waiting for the ended thread's holder to be collected).</summary>
    private readonly Thread?[] _laneThread = new Thread?[LaneCount];

    private int _holderCount;
    private int _aborting; // non-zero once the exit path runs: acquires still sleeping give up
    private int _disposed;

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

    /// <summary>Locks currently held or being acquired by any thread of this process (a snapshot).</summary>
    public int HeldCount
    {
        get
        {
            int n = 0;
            for (int i = 0; i < MaxHeldLocks; i++)
                if (Volatile.Read(ref LWLockOwnerRecord.HeldAt(_record, i).Tag) != 0) // 0 = a free entry
                    n++;
            return n;
        }
    }

    public int CriticalSectionDepth => Volatile.Read(ref _record->CriticalSectionDepth);

    /// <summary>Whether a contended acquire spins briefly (<see cref="LWLockOps.SpinBudget"/>) before sleeping.
    /// Always true in production; the benchmarks turn it off to measure the pure futex sleep/wake path.</summary>
    internal bool SpinBeforeSleep { get; set; } = true;

    /// <summary>Waits as long as needed for <paramref name="lwlock"/> in <paramref name="mode"/>. Not for the
    /// supervisor (see the class summary).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Acquire(in LWLockHandle lwlock, LWLockMode mode) => AcquireEntry(lwlock, mode);

    /// <summary>Waits at most <paramref name="timeout"/> (<see cref="Timeout.InfiniteTimeSpan"/> = no bound). True
    /// when acquired; false on timeout, with nothing held or recorded.</summary>
    public bool Acquire(in LWLockHandle lwlock, LWLockMode mode, TimeSpan timeout)
    {
        long deadline = Deadline.After(timeout);
        var h = CurrentHolder();
        LWLock* l = lwlock.Address;
        int index = Claim(h, l, lwlock, mode);
        if (!LWLockOps.TryAcquireFast(ref l->State, mode) && !AcquireSlow(lwlock, index, mode, deadline))
            return false;
        MarkHeld(h, l, index, mode);
        return true;
    }

    /// <summary>Conditional acquire: takes the lock only if it is available now; never sleeps. Shared mode is
    /// unavailable while a writer waits (so conditional readers cannot starve writers either).</summary>
    public bool TryAcquire(in LWLockHandle lwlock, LWLockMode mode)
    {
        var h = CurrentHolder();
        LWLock* l = lwlock.Address;
        int index = Claim(h, l, lwlock, mode);
        if (!LWLockOps.TryAcquire(ref l->State, mode))
        {
            FreeEntry(index);
            return false;
        }
        MarkHeld(h, l, index, mode);
        return true;
    }

    /// <summary>Acquires <paramref name="lwlock"/> (waiting as long as needed) and returns a scoped hold whose
    /// <see cref="LWLockHold.Dispose"/> releases exactly this hold, from any thread.</summary>
    public LWLockHold Hold(in LWLockHandle lwlock, LWLockMode mode)
    {
        int index = AcquireEntry(lwlock, mode);
        return new LWLockHold(this, lwlock, index, _local[index].Sequence);
    }

    /// <summary>The unbounded acquire; returns the record entry of the hold.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int AcquireEntry(in LWLockHandle lwlock, LWLockMode mode)
    {
        var h = CurrentHolder();
        LWLock* l = lwlock.Address;
        int index = Claim(h, l, lwlock, mode);
        if (!LWLockOps.TryAcquireFast(ref l->State, mode))
            AcquireSlow(lwlock, index, mode, Deadline.Infinite);
        MarkHeld(h, l, index, mode);
        return index;
    }

    /// <summary>Releases <paramref name="lwlock"/>, in whichever mode it is held: the calling thread's hold if it has
    /// one (releasing its most recent acquisition first is cheapest; any order works), else one hold of it by another
    /// thread of this process (a hold that moved threads across an <c>await</c>). Throws when the process does not
    /// hold it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Release(in LWLockHandle lwlock)
    {
        var h = t_holder;
        if (h is not null && h.Owner == this && h.Count > 0)
        {
            int index = h.Entries[h.Count - 1];
            ref var e = ref LWLockOwnerRecord.HeldAt(_record, index);
            if (_local[index].Holder == h.Id && e.Is(lwlock.Offset, lwlock.SegmentId))
            {
                h.Count--;
                h.Released(index); // the next acquire reuses this (hot, free) entry
                ReleaseEntry(index, lwlock.Address);
                return;
            }
        }
        ReleaseSlow(lwlock);
    }

    /// <summary>Releases everything this process holds, on every thread, and reports each lock to
    /// <paramref name="released"/> (its <see cref="Describe"/> text and mode). For the exit path (and tests' error
    /// paths: afterwards the owner is usable again unless disposed). Acquires still waiting
    /// on other threads are woken and give up. True when the record is empty afterwards; false when an acquire could
    /// not be stopped within <paramref name="waitForAcquirers"/> (the record then still lists it, and the supervisor
    /// must treat this process's exit as a crash).</summary>
    public bool ReleaseAll(Action<string, LWLockMode>? released = null, TimeSpan waitForAcquirers = default)
    {
        Volatile.Write(ref _aborting, 1);
        long deadline = Deadline.After(waitForAcquirers);
        while (true)
        {
            bool acquiring = false;
            for (int i = 0; i < MaxHeldLocks; i++)
            {
                ref var e = ref LWLockOwnerRecord.HeldAt(_record, i);
                ulong tag = Volatile.Read(ref e.Tag);
                var phase = HeldLockEntry.PhaseOf(tag);
                if (phase == HeldLockPhase.Held)
                {
                    var mode = HeldLockEntry.ModeOf(tag);
                    var l = (LWLock*)_local[i].Address;
                    string name = DescribeEntry(e);
                    ReleaseEntry(i, l);
                    released?.Invoke(name, mode);
                }
                else if (phase == HeldLockPhase.Acquiring)
                {
                    acquiring = true;
                    if (_local[i].Address != 0)
                        Futex.Wake(ref ((LWLock*)_local[i].Address)->State, Futex.WakeAllCount); // it re-checks _aborting
                }
            }
            if (!acquiring || Deadline.RemainingNanoseconds(deadline) <= 0)
            {
                if (Volatile.Read(ref _disposed) == 0)
                    Volatile.Write(ref _aborting, 0); // an error path, not the exit: the owner stays usable
                return !acquiring;
            }
            Thread.Yield();
        }
    }

    /// <summary>True when this process holds <paramref name="lwlock"/> (in either mode, on any thread).</summary>
    public bool Holds(in LWLockHandle lwlock) => HeldMode(lwlock) is not null;

    /// <summary>The mode in which the calling thread holds <paramref name="lwlock"/>; else the mode of another thread's
    /// hold of it in this process; else null.</summary>
    public LWLockMode? HeldMode(in LWLockHandle lwlock)
    {
        var h = CurrentHolder();
        LWLockMode? any = null;
        for (int i = 0; i < MaxHeldLocks; i++)
        {
            ref var e = ref LWLockOwnerRecord.HeldAt(_record, i);
            ulong tag = Volatile.Read(ref e.Tag);
            if (HeldLockEntry.PhaseOf(tag) != HeldLockPhase.Held || !e.Is(lwlock))
                continue;
            if (_local[i].Holder == h.Id)
                return HeldLockEntry.ModeOf(tag);
            any ??= HeldLockEntry.ModeOf(tag);
        }
        return any;
    }

    /// <summary>Marks the start of code that must not be interrupted by death (shared state is inconsistent until
    /// the matching <see cref="ExitCriticalSection"/>); the supervisor escalates to a full restart when a process
    /// dies with depth &gt; 0. Nests, and counts over all threads of the process.</summary>
    public void EnterCriticalSection() => Interlocked.Increment(ref _record->CriticalSectionDepth);

    public void ExitCriticalSection()
    {
        if (Interlocked.Decrement(ref _record->CriticalSectionDepth) < 0)
        {
            Interlocked.Increment(ref _record->CriticalSectionDepth);
            throw new InvalidOperationException("ExitCriticalSection without a matching EnterCriticalSection");
        }
    }

    /// <summary>The lock's name for messages: "ShmemIndex" (segment 0 offset 128).</summary>
    public string Describe(in LWLockHandle lwlock) =>
        $"\"{_tranches?.TrancheName(lwlock.TrancheId) ?? $"tranche {lwlock.TrancheId}"}\" ({lwlock.Id})";

    /// <summary>Exit path: releases everything still held (see <see cref="ReleaseAll"/>) and frees the slot when its
    /// record is empty. Idempotent; the owner is unusable afterwards.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        if (!ReleaseAll(waitForAcquirers: TimeSpan.FromSeconds(1)))
            return; // an acquire is still recorded: the slot stays this process's, for the supervisor to see
        Volatile.Write(ref _record->CriticalSectionDepth, 0);
        Volatile.Write(ref _record->Pid, 0);
    }

    /// <summary>True while the hold <paramref name="entry"/>/<paramref name="sequence"/> has not been released.</summary>
    internal bool IsHoldCurrent(int entry, long sequence) =>
        (uint)entry < MaxHeldLocks && Volatile.Read(ref _local[entry].Sequence) == sequence &&
        HeldLockEntry.PhaseOf(Volatile.Read(ref LWLockOwnerRecord.HeldAt(_record, entry).Tag)) == HeldLockPhase.Held;

    /// <summary>Releases one <see cref="LWLockHold"/>; nothing when it was released already.</summary>
    internal void ReleaseHold(in LWLockHandle lwlock, int entry, long sequence)
    {
        if (!IsHoldCurrent(entry, sequence) || !LWLockOwnerRecord.HeldAt(_record, entry).Is(lwlock))
            return;
        var h = t_holder;
        if (h is not null && h.Owner == this && _local[entry].Holder == h.Id)
        {
            h.Remove(entry);
            h.Released(entry);
        }
        ReleaseEntry(entry, lwlock.Address);
    }

    /// <summary>The calling thread's holder for this owner.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Holder CurrentHolder()
    {
        var h = t_holder;
        return h is not null && h.Owner == this ? h : SwitchHolder();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Holder SwitchHolder()
    {
        var others = t_otherHolders ??= new Holder[4];
        if (t_holder is { } previous)
            Park(others, previous);
        for (int i = 0; i < others.Length; i++)
        {
            if (others[i] is { } h && h.Owner == this)
            {
                others[i] = null!;
                return t_holder = h;
            }
        }
        int id = Interlocked.Increment(ref _holderCount);
        int lane = TakeLane(id);
        return t_holder = new Holder(this, id, lane < 0 ? -1 : lane * LaneSize);
    }

    /// <summary>A free lane for holder <paramref name="id"/> (the calling thread's), or -1. A lane of a thread that has
    /// ended counts as free once none of its entries is held (its holds may have moved to other threads).</summary>
    private int TakeLane(int id)
    {
        for (int pass = 0; pass < 2; pass++)
        {
            for (int k = 0; k < LaneCount; k++)
            {
                int owner = Volatile.Read(ref _laneOwner[k]);
                if (owner != 0 && (pass == 0 || !LaneAbandoned(k)))
                    continue;
                if (Interlocked.CompareExchange(ref _laneOwner[k], id, owner) == owner)
                {
                    Volatile.Write(ref _laneThread[k], Thread.CurrentThread);
                    return k;
                }
            }
        }
        return -1;
    }

    private bool LaneAbandoned(int lane)
    {
        if (Volatile.Read(ref _laneThread[lane]) is not { IsAlive: false })
            return false;
        for (int i = lane * LaneSize; i < (lane + 1) * LaneSize; i++)
            if (Volatile.Read(ref _local[i].Holder) != 0)
                return false;
        return true;
    }

    /// <summary>A holder was collected (its thread ended): its lane is free for another thread once no entry in it is
    /// in use (holds that moved to other threads keep it until process exit).</summary>
    private void ReturnLane(Holder h)
    {
        // Process-local state only: the finalizer may run after the segment was unmapped. A dead thread has no acquire
        // in progress, so its lane entries are in use exactly when a hold of them is (holder set).
        for (int k = 0; k < h.LaneCount; k++)
        {
            int start = h.Lanes[k];
            bool inUse = false;
            for (int i = start; i < start + LaneSize; i++)
                inUse |= Volatile.Read(ref _local[i].Holder) != 0;
            if (!inUse)
                Interlocked.CompareExchange(ref _laneOwner[start / LaneSize], 0, h.Id); // unless taken back meanwhile
        }
    }

    private static void Park(Holder[] others, Holder h)
    {
        for (int i = 0; i < others.Length; i++)
        {
            if (others[i] is null)
            {
                others[i] = h;
                return;
            }
        }
        // More owners than places: keep the ones that still hold something (an empty holder is recreated on demand).
        for (int i = 0; i < others.Length; i++)
        {
            if (others[i].Count == 0)
            {
                others[i] = h;
                return;
            }
        }
        Array.Resize(ref t_otherHolders, others.Length * 2);
        t_otherHolders![others.Length] = h;
    }

    /// <summary>Claims a free entry — in the thread's lane with plain stores, else in the overflow area with a CAS —
    /// writes the lock into it as <see cref="HeldLockPhase.Acquiring"/> and returns its index. Validates everything
    /// first, so a throw leaves no trace.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Claim(Holder h, LWLock* l, in LWLockHandle lwlock, LWLockMode mode)
    {
        if (h.Count != 0 || l == null || (uint)((byte)mode - 1) > 1u || _aborting != 0) // 1u: Shared (1), Exclusive (2)
            CheckCanRecord(h, lwlock, mode);
        ulong tag = HeldLockEntry.WithModeAndPhase(lwlock.RecordTag, mode, HeldLockPhase.Acquiring);
        int index = h.Cursor;
        ref var e = ref LWLockOwnerRecord.HeldAt(_record, index);
        if (h.LaneStart < 0 || Volatile.Read(ref e.Tag) != 0) // no lane, or the cursor's entry is taken
            return ClaimSlow(h, lwlock, tag);
        // Only this thread claims entries of its lane: offset first, then the tag. The lock's CAS that follows is a
        // full fence, so the entry is visible before the attempt.
        e.Offset = lwlock.Offset;
        e.Tag = tag;
        _local[index].Address = (nint)l;
        _local[index].Sequence++;
        return index;
    }

    /// <summary>The thread's lanes (plain stores), then the overflow area (CAS), then one more free lane for this
    /// thread: so one thread can hold all <see cref="MaxHeldLocks"/> locks, and many threads share the overflow area.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int ClaimSlow(Holder h, in LWLockHandle lwlock, ulong tag)
    {
        int index = -1;
        for (int k = 0; k < h.LaneCount && index < 0; k++)
            index = ClaimInLane(h.Lanes[k], lwlock, tag);
        const int OverflowSize = MaxHeldLocks - OverflowStart;
        int first = h.Id * LaneSize % OverflowSize; // threads without a lane start apart (different cache lines)
        for (int n = 0; index < 0 && n < OverflowSize; n++)
        {
            int i = OverflowStart + (first + n) % OverflowSize;
            ref var e = ref LWLockOwnerRecord.HeldAt(_record, i);
            if (Volatile.Read(ref e.Tag) == 0 && Interlocked.CompareExchange(ref e.Tag, tag, 0) == 0)
            {
                // A death right here leaves an Acquiring entry naming its previous offset: still a possible holder.
                e.Offset = lwlock.Offset;
                index = i;
            }
        }
        for (int lane = 0; index < 0 && lane < LaneCount; lane++)
        {
            if (Interlocked.CompareExchange(ref _laneOwner[lane], h.Id, 0) != 0)
                continue;
            Volatile.Write(ref _laneThread[lane], Thread.CurrentThread);
            h.AddLane(lane * LaneSize);
            index = ClaimInLane(lane * LaneSize, lwlock, tag);
        }
        if (index < 0)
            throw new LWLockException("too many LWLocks taken",
                $"Owner slot {Slot} (process {Pid}) already holds or is acquiring {HeldCount} locks over its threads, " +
                $"the limit (MaxHeldLocks = {MaxHeldLocks}).");
        _local[index].Address = (nint)lwlock.Address;
        _local[index].Sequence++;
        return index;
    }

    /// <summary>A free entry of a lane the calling thread owns, written (offset, then tag); -1 when the lane is full.</summary>
    private int ClaimInLane(int start, in LWLockHandle lwlock, ulong tag)
    {
        for (int i = start; i < start + LaneSize; i++)
        {
            ref var e = ref LWLockOwnerRecord.HeldAt(_record, i);
            if (Volatile.Read(ref e.Tag) == 0)
            {
                e.Offset = lwlock.Offset;
                e.Tag = tag;
                return i;
            }
        }
        return -1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void MarkHeld(Holder h, LWLock* l, int index, LWLockMode mode)
    {
        if (mode == LWLockMode.Exclusive)
            l->ExclusiveOwner = _exclusiveOwner;
        _local[index].Holder = h.Id;
        LWLockOwnerRecord.HeldAt(_record, index).Phase = HeldLockPhase.Held;
        h.Push(index);
        h.Claimed(index);
    }

    /// <summary>Releases the lock of a held entry and frees the entry (its holder's list is the caller's concern).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ReleaseEntry(int index, LWLock* l)
    {
        ref var e = ref LWLockOwnerRecord.HeldAt(_record, index);
        LWLockMode mode = e.Mode;
        if (mode == LWLockMode.Exclusive)
            l->ExclusiveOwner = LWLock.NoExclusiveOwner; // cleared before the release: afterwards the next holder owns it
        LWLockOps.Release(ref l->State, mode);
        _local[index].Holder = 0; // before the entry is free: a thread that claims it next never sees the old holder
        Volatile.Write(ref e.Tag, 0);
    }

    /// <summary>An acquire that did not happen (timed out, failed, conditional): frees its entry.</summary>
    private void FreeEntry(int index) => Volatile.Write(ref LWLockOwnerRecord.HeldAt(_record, index).Tag, 0);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ReleaseSlow(in LWLockHandle lwlock)
    {
        var h = CurrentHolder();
        for (int k = h.Count - 1; k >= 0; k--)
        {
            int i = h.Entries[k];
            if (_local[i].Holder == h.Id && IsHeldEntryOf(i, lwlock))
            {
                h.RemoveAt(k);
                h.Released(i);
                ReleaseEntry(i, lwlock.Address);
                return;
            }
        }
        // Not the calling thread's: a hold of another thread of this process (moved across an await).
        for (int i = 0; i < MaxHeldLocks; i++)
        {
            if (IsHeldEntryOf(i, lwlock))
            {
                ReleaseEntry(i, lwlock.Address);
                return;
            }
        }
        throw new LWLockException($"lock {Describe(lwlock)} is not held",
            $"Owner slot {Slot} (process {Pid}) holds {HeldCount} locks, none of them this one.");
    }

    private bool IsHeldEntryOf(int index, in LWLockHandle lwlock)
    {
        ref var e = ref LWLockOwnerRecord.HeldAt(_record, index);
        return HeldLockEntry.PhaseOf(Volatile.Read(ref e.Tag)) == HeldLockPhase.Held && e.Is(lwlock);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool AcquireSlow(in LWLockHandle lwlock, int index, LWLockMode mode, long deadline)
    {
        bool acquired = false;
        try
        {
            acquired = LWLockOps.AcquireSlow(ref lwlock.Lock.State, mode, deadline, SpinBeforeSleep, ref _aborting);
            if (!acquired && Volatile.Read(ref _aborting) != 0)
                throw new LWLockException($"could not acquire lock {Describe(lwlock)}: the process is exiting");
        }
        finally
        {
            if (!acquired)
                FreeEntry(index); // timed out, aborted or failed: LWLockOps left the word as if we had never tried
        }
        return acquired;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void CheckCanRecord(Holder h, in LWLockHandle lwlock, LWLockMode mode)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Volatile.Read(ref _aborting) != 0)
            throw new LWLockException($"could not acquire lock {Describe(lwlock)}: the process is exiting");
        if (mode is not (LWLockMode.Shared or LWLockMode.Exclusive))
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "a lock mode is Shared or Exclusive");
        if (lwlock.IsNull)
            throw new ArgumentException("the lock handle is empty", nameof(lwlock));
        // The holder's list, pruned of holds other threads released (they cannot edit it).
        int kept = 0;
        for (int k = 0; k < h.Count; k++)
        {
            int i = h.Entries[k];
            if (_local[i].Holder != h.Id || HeldLockEntry.PhaseOf(Volatile.Read(ref LWLockOwnerRecord.HeldAt(_record, i).Tag)) != HeldLockPhase.Held)
                continue;
            if (LWLockOwnerRecord.HeldAt(_record, i).Is(lwlock))
                throw new LWLockException($"lock {Describe(lwlock)} is already held by this thread",
                    $"Requested {mode} mode while holding it in {LWLockOwnerRecord.HeldAt(_record, i).Mode} mode (owner slot {Slot}).",
                    "Lightweight locks are not re-entrant: acquiring a held lock again would wait for ever.");
            h.Entries[kept++] = i;
        }
        h.Count = kept;
    }

    private string DescribeEntry(in HeldLockEntry e) =>
        $"\"{_tranches?.TrancheName(e.TrancheId) ?? $"tranche {e.TrancheId}"}\" ({new LWLockId(e.SegmentId, e.Offset)})";

    /// <summary>The process-local side of one record entry.</summary>
    private struct EntryLocal
    {
        /// <summary>This process's address of the lock (shared memory holds offsets only).</summary>
        public nint Address;

        /// <summary>How many times the entry has been claimed: tells a stale <see cref="LWLockHold"/> from the current
        /// one.</summary>
        public long Sequence;

        /// <summary>The <see cref="Holder.Id"/> of the thread whose hold it is; 0 = none (free, or being acquired). Set
        /// after the acquire succeeds, cleared before the entry is freed.</summary>
        public int Holder;
    }

    /// <summary>One thread's view of its holds through one owner: the entries it acquired (newest last), possibly
    /// including some another thread has released since (pruned lazily), and where it next looks for a free entry.
    /// Only its thread writes it.</summary>
    private sealed class Holder
    {
        public readonly LockOwner Owner;
        public readonly int Id;
        public readonly int LaneStart; // first entry of its first lane; -1 = none (claims go to the overflow area)
        public int[] Lanes = new int[1]; // first entries of the lanes it owns (more than one only past 8 + overflow)
        public int LaneCount;
        public int[] Entries = new int[16];
        public int Count;
        public int Cursor; // in the lane: the entry tried first

        public Holder(LockOwner owner, int id, int laneStart)
        {
            Owner = owner;
            Id = id;
            LaneStart = laneStart;
            Cursor = laneStart < 0 ? 0 : laneStart;
            if (laneStart >= 0)
                AddLane(laneStart);
        }

        public void AddLane(int start)
        {
            if (LaneCount == Lanes.Length)
                Array.Resize(ref Lanes, Lanes.Length * 2);
            Lanes[LaneCount++] = start;
        }

        ~Holder() => Owner.ReturnLane(this);

        /// <summary>Entry <paramref name="index"/> was just taken: the next claim tries the one after it in the lane.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Claimed(int index)
        {
            if ((uint)(index - LaneStart) < LaneSize - 1)
                Cursor = index + 1;
        }

        /// <summary>Entry <paramref name="index"/> was just freed by this thread: reuse it next (LIFO keeps it hot).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Released(int index)
        {
            if ((uint)(index - LaneStart) < LaneSize)
                Cursor = index;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Push(int index)
        {
            var entries = Entries;
            int count = Count;
            if ((uint)count < (uint)entries.Length)
            {
                entries[count] = index;
                Count = count + 1;
            }
            else
            {
                Grow(index);
            }
        }

        public void Remove(int index)
        {
            for (int k = Count - 1; k >= 0; k--)
            {
                if (Entries[k] == index)
                {
                    RemoveAt(k);
                    return;
                }
            }
        }

        public void RemoveAt(int k)
        {
            Array.Copy(Entries, k + 1, Entries, k, Count - k - 1);
            Count--;
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private void Grow(int index)
        {
            Array.Resize(ref Entries, Entries.Length * 2);
            Entries[Count++] = index;
        }
    }
}
