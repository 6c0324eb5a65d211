using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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

    private const int CacheLine = 64;

    /// <summary>Unused elements at each end of <see cref="_local"/> (≥ one cache line), so no other object's data shares
    /// a line with an entry that a thread writes on every operation (false sharing with this owner's own fields, which
    /// every thread reads).</summary>
    private const int LocalPad = 3; // × 24 bytes (EntryLocal) ≥ 64

    [ThreadStatic] private static Holder? t_holder;        // the calling thread's holder of the owner used last
    [ThreadStatic] private static Holder[]? t_otherHolders; // its holders of other owners (tests use several)

    private readonly LWLockOwnerRecord* _record;

    /// <summary>The record's first entry (<see cref="Entry"/> indexes from here without a bounds check: every index
    /// this class uses comes from its own loops and lists, all below <see cref="MaxHeldLocks"/>).</summary>
    private readonly HeldLockEntry* _entries;
    private readonly LWLockTrancheTable? _tranches;

    /// <summary>What this owner writes into a lock's <see cref="LWLock.ExclusiveOwner"/> (pid and slot).</summary>
    private readonly long _exclusiveOwner;

    /// <summary>Per entry, what this process keeps beside the shared entry (one array, padded at both ends, so an
    /// entry's local side is one cache line touched on the fast path).</summary>
    private readonly EntryLocal[] _local = new EntryLocal[LocalPad + MaxHeldLocks + LocalPad];

    /// <summary><see cref="_local"/>'s entry 0: the array is pinned for the life of the process (a pointer saves the fast
    /// path its checks; a GCHandle rather than GC.AllocateArray&lt;T&gt;, whose instantiation ReadyToRun cannot precompile,
    /// so every backend would load the JIT). Never freed: holders' finalizers may still read it after Dispose.</summary>
    private readonly EntryLocal* _localBase;

    /// <summary>Per lane, the thread that owns it; null = free. The reference is the ownership: a lane is claimed by a
    /// CAS from null, or from a thread that has ended once none of the lane's entries is in use (<see cref="TakeLane"/>),
    /// and returned by a CAS back to null when its holder is collected with the lane empty. One word, so two threads can
    /// never both believe they own a lane (only its owner claims entries there, with plain stores).</summary>
    private readonly Thread?[] _laneThread = new Thread?[LaneCount];

    private int _holderCount;
    private int _aborting; // non-zero once the exit path runs: acquires still sleeping give up
    private int _disposed;

    internal LockOwner(LWLockOwnerRecord* record, int slot, int pid, LWLockTrancheTable? tranches)
    {
        _record = record;
        _entries = (HeldLockEntry*)((byte*)record + LWLockOwnerRecord.HeldOffset);
        _localBase = (EntryLocal*)GCHandle.Alloc(_local, GCHandleType.Pinned).AddrOfPinnedObject() + LocalPad;
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
                if (Volatile.Read(ref Entry(i).Tag) != 0) // 0 = a free entry
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
        MarkHeld(h, lwlock, l, index, mode);
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
        MarkHeld(h, lwlock, l, index, mode);
        return true;
    }

    /// <summary>Acquires <paramref name="lwlock"/> (waiting as long as needed) and returns a scoped hold whose
    /// <see cref="LWLockHold.Dispose"/> releases exactly this hold, from any thread.</summary>
    public LWLockHold Hold(in LWLockHandle lwlock, LWLockMode mode)
    {
        int index = AcquireEntry(lwlock, mode);
        return new LWLockHold(this, lwlock, index, Local(index).Sequence);
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
        MarkHeld(h, lwlock, l, index, mode);
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
        if (h is not null && h.Owner == this)
        {
            // The top of the thread's lane: its most recent acquisition there. Only this thread claims lane entries, so
            // a held entry of this lock there is this thread's hold.
            int top = h.Cursor - 1;
            if (top >= h.LaneStart)
            {
                ref var e = ref Entry(top);
                ulong tag = e.Tag;
                if (e.Is(lwlock.Offset, lwlock.SegmentId) && HeldLockEntry.PhaseOf(tag) == HeldLockPhase.Held)
                {
                    ReleaseEntry(top, lwlock.Address, HeldLockEntry.ModeOf(tag));
                    h.Cursor = LaneTop(h, top);
                    return;
                }
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
                ref var e = ref Entry(i);
                ulong tag = Volatile.Read(ref e.Tag);
                var phase = HeldLockEntry.PhaseOf(tag);
                if (phase == HeldLockPhase.Held)
                {
                    var mode = HeldLockEntry.ModeOf(tag);
                    var l = (LWLock*)Local(i).Address;
                    string name = DescribeEntry(e);
                    ReleaseEntry(i, l);
                    released?.Invoke(name, mode);
                }
                else if (phase == HeldLockPhase.Acquiring)
                {
                    acquiring = true;
                    if (Local(i).Address != 0)
                        Futex.Wake(ref ((LWLock*)Local(i).Address)->State, Futex.WakeAllCount); // it re-checks _aborting
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
            ref var e = ref Entry(i);
            ulong tag = Volatile.Read(ref e.Tag);
            if (HeldLockEntry.PhaseOf(tag) != HeldLockPhase.Held || !e.Is(lwlock))
                continue;
            if (Local(i).Holder == h.Id)
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
        (uint)entry < MaxHeldLocks && Volatile.Read(ref Local(entry).Sequence) == sequence &&
        HeldLockEntry.PhaseOf(Volatile.Read(ref Entry(entry).Tag)) == HeldLockPhase.Held;

    /// <summary>Releases one <see cref="LWLockHold"/>; nothing when it was released already.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void ReleaseHold(in LWLockHandle lwlock, int entry, long sequence)
    {
        if ((uint)entry >= MaxHeldLocks)
            return;
        ref var local = ref Local(entry);
        ref var e = ref Entry(entry);
        if (Volatile.Read(ref local.Sequence) != sequence ||
            HeldLockEntry.PhaseOf(Volatile.Read(ref e.Tag)) != HeldLockPhase.Held || !e.Is(lwlock))
            return;
        var h = t_holder;
        bool mine = h is not null && h.Owner == this && local.Holder == h.Id;
        ReleaseEntry(entry, lwlock.Address);
        if (mine)
            Forget(h!, entry);
    }

    /// <summary>The calling thread's holder <paramref name="h"/> released <paramref name="entry"/>: in its lane, the
    /// cursor comes down over free entries; elsewhere, the entry leaves its list.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Forget(Holder h, int entry)
    {
        if (h.InLane(entry))
        {
            if (entry == h.Cursor - 1)
                h.Cursor = LaneTop(h, entry);
        }
        else
        {
            h.RemoveOther(entry); // not inlined: the rare case
        }
    }

    /// <summary>Where the lane's cursor goes once entry <paramref name="top"/> (its top) was freed: down over every free
    /// entry below it (left by holds released out of order or by other threads).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int LaneTop(Holder h, int top)
    {
        while (top > h.LaneStart && Volatile.Read(ref Entry(top - 1).Tag) == 0)
            top--;
        return top;
    }

    /// <summary>Record entry <paramref name="index"/> (0 ≤ index &lt; <see cref="MaxHeldLocks"/>, not checked).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref HeldLockEntry Entry(int index) => ref _entries[index];

    /// <summary>The process-local side of entry <paramref name="index"/> (same range, not checked).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref EntryLocal Local(int index) => ref _localBase[index];

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
        int lane = TakeLane();
        return t_holder = new Holder(this, id, lane < 0 ? -1 : lane * LaneSize);
    }

    /// <summary>A free lane for the calling thread, or -1. A lane of a thread that has ended counts as free once none of
    /// its entries is held (its holds may have moved to other threads).</summary>
    private int TakeLane()
    {
        var me = Thread.CurrentThread;
        for (int pass = 0; pass < 2; pass++)
        {
            for (int k = 0; k < LaneCount; k++)
            {
                var owner = Volatile.Read(ref _laneThread[k]);
                if (owner is not null && (pass == 0 || owner.IsAlive || LaneInUse(k * LaneSize)))
                    continue;
                if (ReferenceEquals(Interlocked.CompareExchange(ref _laneThread[k], me, owner), owner))
                    return k;
            }
        }
        return -1;
    }

    /// <summary>Whether an entry of the lane starting at <paramref name="start"/> is held (process-local state only: the
    /// finalizer may run after the segment was unmapped). Meant for lanes whose thread has ended: such a thread has no
    /// acquire in progress, so an entry is in use exactly when a hold of it is (holder set).</summary>
    private bool LaneInUse(int start)
    {
        for (int i = start; i < start + LaneSize; i++)
            if (Volatile.Read(ref Local(i).Holder) != 0)
                return true;
        return false;
    }

    /// <summary>A holder was collected (its thread ended, or it was dropped empty): its lanes are free for other threads
    /// once no entry in them is in use (holds that moved to other threads keep them until process exit).</summary>
    private void ReturnLane(Holder h)
    {
        for (int k = 0; k < h.LaneCount; k++)
        {
            int start = h.Lanes[k];
            if (!LaneInUse(start))
                Interlocked.CompareExchange(ref _laneThread[start / LaneSize], null, h.Thread); // unless taken back meanwhile
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
            if (others[i].IsEmpty)
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
        // Holding something already (anything in the lane below the cursor, or elsewhere): check for a re-acquire.
        if ((h.Cursor ^ h.LaneStart | h.OtherCount) != 0 || l == null || (uint)((byte)mode - 1) > 1u || _aborting != 0)
            CheckCanRecord(h, lwlock, mode); // 1u above: Shared (1) and Exclusive (2) are the modes
        ulong tag = HeldLockEntry.WithModeAndPhase(lwlock.RecordTag, mode, HeldLockPhase.Acquiring);
        int index = h.Cursor;
        if (index >= h.LaneEnd) // no lane, or it is full up to its end
            return ClaimSlow(h, lwlock, tag);
        ref var e = ref Entry(index); // free: entries at and above the cursor always are
        // Only this thread claims entries of its lane: offset first, then the tag. The lock's CAS that follows is a
        // full fence, so the entry is visible before the attempt.
        // A thread taking the same lock again and again finds both already written: a load is cheaper than a store
        // that the lock's CAS (a full fence) would have to wait for.
        if (e.Offset != lwlock.Offset)
            e.Offset = lwlock.Offset;
        e.Tag = tag;
        ref nint address = ref Local(index).Address;
        if (address != (nint)l)
            address = (nint)l;
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
            ref var e = ref Entry(i);
            if (Volatile.Read(ref e.Tag) == 0 && Interlocked.CompareExchange(ref e.Tag, tag, 0) == 0)
            {
                // A death right here leaves an Acquiring entry naming its previous offset: still a possible holder.
                e.Offset = lwlock.Offset;
                index = i;
            }
        }
        for (int lane = 0; index < 0 && lane < LaneCount; lane++)
        {
            if (Interlocked.CompareExchange(ref _laneThread[lane], h.Thread, null) is not null)
                continue;
            h.AddLane(lane * LaneSize);
            index = ClaimInLane(lane * LaneSize, lwlock, tag);
        }
        if (index < 0)
            throw new LWLockException("too many LWLocks taken",
                $"Owner slot {Slot} (process {Pid}) already holds or is acquiring {HeldCount} locks over its threads, " +
                $"the limit (MaxHeldLocks = {MaxHeldLocks}).");
        Local(index).Address = (nint)lwlock.Address;
        return index;
    }

    /// <summary>A free entry of a lane the calling thread owns, written (offset, then tag); -1 when the lane is full.</summary>
    private int ClaimInLane(int start, in LWLockHandle lwlock, ulong tag)
    {
        for (int i = start; i < start + LaneSize; i++)
        {
            ref var e = ref Entry(i);
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
    private void MarkHeld(Holder h, in LWLockHandle lwlock, LWLock* l, int index, LWLockMode mode)
    {
        if (mode == LWLockMode.Exclusive)
            l->ExclusiveOwner = _exclusiveOwner;
        Local(index).Holder = h.Id;
        // The whole tag in one store (a byte store into it would stall the release's wider loads of the same word).
        Entry(index).Tag = HeldLockEntry.WithModeAndPhase(lwlock.RecordTag, mode, HeldLockPhase.Held);
        if (h.InLane(index))
        {
            if (index >= h.Cursor)
                h.Cursor = index + 1;
        }
        else
        {
            h.PushOther(index);
        }
    }

    /// <summary>Releases the lock of a held entry and frees the entry (its holder's cursor or list is the caller's concern: see Forget).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ReleaseEntry(int index, LWLock* l) => ReleaseEntry(index, l, Entry(index).Mode);

    /// <summary><see cref="ReleaseEntry(int, LWLock*)"/> when the caller has read the entry's mode already.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ReleaseEntry(int index, LWLock* l, LWLockMode mode)
    {
        ref var e = ref Entry(index);
        if (mode == LWLockMode.Exclusive)
            l->ExclusiveOwner = LWLock.NoExclusiveOwner; // cleared before the release: afterwards the next holder owns it
        LWLockOps.Release(ref l->State, mode);
        ref var local = ref Local(index);
        local.Holder = 0; // before the entry is free: a thread that claims it next never sees the old holder
        local.Sequence++; // every LWLockHold of this hold is stale now
        Volatile.Write(ref e.Tag, 0);
    }

    /// <summary>An acquire that did not happen (timed out, failed, conditional): frees its entry.</summary>
    private void FreeEntry(int index) => Volatile.Write(ref Entry(index).Tag, 0);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ReleaseSlow(in LWLockHandle lwlock)
    {
        var h = CurrentHolder();
        // The calling thread's holds, newest first: in its lane below the cursor, then its other entries.
        for (int i = h.Cursor - 1; i >= h.LaneStart; i--)
        {
            if (IsHeldEntryOf(i, lwlock))
            {
                ReleaseEntry(i, lwlock.Address);
                Forget(h, i);
                return;
            }
        }
        for (int k = h.OtherCount - 1; k >= 0; k--)
        {
            int i = h.At(k);
            if (Local(i).Holder == h.Id && IsHeldEntryOf(i, lwlock))
            {
                ReleaseEntry(i, lwlock.Address);
                h.RemoveOtherAt(k);
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
        ref var e = ref Entry(index);
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
        // The lane below the cursor (which first comes down over entries other threads freed: they cannot move it),
        // then the holder's other entries, pruned of holds other threads released.
        if (h.Cursor > h.LaneStart && Volatile.Read(ref Entry(h.Cursor - 1).Tag) == 0)
            h.Cursor = LaneTop(h, h.Cursor - 1);
        for (int i = h.LaneStart; i < h.Cursor; i++)
            if (IsHeldEntryOf(i, lwlock))
                ThrowHeldByThisThread(lwlock, mode, i);
        int kept = 0;
        for (int k = 0; k < h.OtherCount; k++)
        {
            int i = h.At(k);
            if (Local(i).Holder != h.Id || HeldLockEntry.PhaseOf(Volatile.Read(ref Entry(i).Tag)) != HeldLockPhase.Held)
                continue;
            if (Entry(i).Is(lwlock))
                ThrowHeldByThisThread(lwlock, mode, i);
            h.At(kept++) = i;
        }
        h.OtherCount = kept;
    }

    private void ThrowHeldByThisThread(in LWLockHandle lwlock, LWLockMode mode, int entry) =>
        throw new LWLockException($"lock {Describe(lwlock)} is already held by this thread",
            $"Requested {mode} mode while holding it in {Entry(entry).Mode} mode (owner slot {Slot}).",
            "Lightweight locks are not re-entrant: acquiring a held lock again would wait for ever.");

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

    /// <summary>One thread's view of its holds through one owner. Only its thread writes it.
    /// <para>Its <b>lane</b> (the first one it got) is its stack of holds: entries below <see cref="Cursor"/> are its
    /// acquisitions there, in order (some maybe freed since: released out of order, or by another thread), entries at
    /// and above it are free. So the common acquire claims the entry at the cursor and the common release frees the one
    /// below it, with no list to keep. Entries beyond the lane (in the overflow area, or in further lanes) are kept in
    /// a list (<see cref="At"/>, <see cref="OtherCount"/>), newest last, pruned lazily of holds other threads
    /// released.</para></summary>
    private sealed class Holder
    {
        private const int PadInts = CacheLine / sizeof(int);

        public readonly LockOwner Owner;
        public readonly int Id;
        public readonly Thread Thread = Thread.CurrentThread; // its thread: the owner of its lanes in _laneThread
        public readonly int LaneStart; // first entry of its lane; without one, LaneStart = LaneEnd = 0 (an empty lane)
        public readonly int LaneEnd;
        public int[] Lanes = new int[1]; // first entries of the lanes it owns (more than one only past 8 + overflow)
        public int LaneCount;

        /// <summary>Its entries outside its lane, newest last, between a cache line of padding on each side (see
        /// <see cref="HotFields"/>).</summary>
        private int[] _others = new int[PadInts + 16 + PadInts];

        private HotFields _hot;

        public Holder(LockOwner owner, int id, int laneStart)
        {
            Owner = owner;
            Id = id;
            LaneStart = Math.Max(laneStart, 0);
            LaneEnd = laneStart < 0 ? 0 : laneStart + LaneSize;
            Cursor = LaneStart;
            if (laneStart >= 0)
                AddLane(laneStart);
        }

        ~Holder() => Owner.ReturnLane(this);

        /// <summary>In the lane: the first entry above its acquisitions (the next one to claim).</summary>
        public ref int Cursor => ref _hot.Cursor;

        /// <summary>Entries in the list of those outside the lane.</summary>
        public ref int OtherCount => ref _hot.OtherCount;

        /// <summary>True when it holds nothing as far as it knows (nothing below the cursor, no other entries).</summary>
        public bool IsEmpty => Cursor == LaneStart && OtherCount == 0;

        private int Capacity => _others.Length - 2 * PadInts;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool InLane(int index) => (uint)(index - LaneStart) < (uint)(LaneEnd - LaneStart);

        /// <summary>Position <paramref name="k"/> of the list of other entries (0 ≤ k &lt; OtherCount, not checked).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public ref int At(int k) => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_others), PadInts + k);

        public void AddLane(int start)
        {
            if (LaneCount == Lanes.Length)
                Array.Resize(ref Lanes, Lanes.Length * 2);
            Lanes[LaneCount++] = start;
        }

        public void PushOther(int index)
        {
            if (OtherCount == Capacity)
            {
                var bigger = new int[PadInts + 2 * Capacity + PadInts];
                Array.Copy(_others, PadInts, bigger, PadInts, OtherCount);
                _others = bigger;
            }
            At(OtherCount++) = index;
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        public void RemoveOther(int index)
        {
            for (int k = OtherCount - 1; k >= 0; k--)
            {
                if (At(k) == index)
                {
                    RemoveOtherAt(k);
                    return;
                }
            }
        }

        public void RemoveOtherAt(int k)
        {
            Array.Copy(_others, PadInts + k + 1, _others, PadInts + k, OtherCount - k - 1);
            OtherCount--;
        }

        /// <summary>The fields its thread writes on every acquire and release, alone in their cache line: another
        /// thread's data next to them (after a GC packed the objects together) would bounce that line between the
        /// cores on every operation (false sharing), as the padding of the list does for it.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 3 * CacheLine)]
        private struct HotFields
        {
            [FieldOffset(CacheLine)] public int Cursor;
            [FieldOffset(CacheLine + sizeof(int))] public int OtherCount;
        }
    }
}
