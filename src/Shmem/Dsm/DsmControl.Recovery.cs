using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.Dsm;

/// <summary>
/// Crash recovery without a full restart (<see cref="DsmControl"/>'s reconcile facet): give back a dead backend's
/// references, finish items whose creator or destroyer died. The supervisor takes the DsmControl lock here with a
/// timeout and only for memory operations; liveness checks and system calls run outside it.
/// </summary>
internal sealed unsafe partial class DsmControl
{
    /// <summary>
    /// Gives back what the dead process of backend slot <paramref name="slot"/> held (PostgreSQL cannot: it restarts
    /// everything). Precondition: the process is dead (throws if its pid is alive) and its lock owner record has not
    /// been reset yet: if that record shows it held or was acquiring the DsmControl lock, the table cannot be trusted
    /// and the result is <see cref="DsmReconcileStatus.DiedHoldingLock"/> (do a full restart).
    /// <para>Every segment the slot had attached loses one reference and is destroyed if none is left (unless pinned:
    /// the pin is a reference). Pins the process made stay, as in PostgreSQL: a pin belongs to the segment, it is
    /// meant to outlive its creator, and only <see cref="DsmSession.Unpin"/>, shutdown or a full restart removes it.
    /// Then the slot's record is cleared, and <see cref="FinishAbandoned"/> runs (items Creating or Destroying whose
    /// owner is dead, this process's included).</para>
    /// </summary>
    /// <param name="deadPid">The reaped process that ran in the slot, when the caller knows it: a record naming another
    /// pid is then a stale one (a process that left the slot cleanly earlier; its pid may since have been reused) and
    /// is reconciled like any other. Without it, a record whose pid is alive is refused.</param>
    public DsmReconcileResult ReconcileSlot(int slot, TimeSpan? lockTimeout = null, int deadPid = 0)
    {
        ref var record = ref _table.Record(slot);
        int pid = Volatile.Read(ref record.Pid);
        if (pid != 0 && deadPid == 0 && ProcessControl.IsAlive(pid))
            throw new InvalidOperationException($"dynamic shared memory slot {slot} belongs to process {pid}, which is alive");
        if (HeldControlLock(slot, pid))
            return new DsmReconcileResult(DsmReconcileStatus.DiedHoldingLock, 0, 0, 0, 0);
        var candidates = AbandonedCandidates();
        var timeout = lockTimeout ?? DefaultLockTimeout;
        if (!TryLock(timeout))
            return new DsmReconcileResult(DsmReconcileStatus.LockTimeout, 0, 0, 0, 0);
        int dropped = 0;
        int destroyed = 0;
        var toDestroy = new List<int>();
        try
        {
            int count = Math.Clamp(Volatile.Read(ref record.Count), 0, DsmControlLayout.MaxAttachmentsPerSlot);
            int itemCount = _table.Header.ItemCount;
            for (int e = 0; e < count; e++)
            {
                var entry = _table.Entry(slot, e);
                int index = _table.Codec.IndexOf(entry.Handle);
                if (entry.Handle == 0 || index >= itemCount)
                    continue;
                ref var item = ref _table.Item(index);
                if (item.Handle != entry.Handle)
                    continue; // stale: finished already
                if ((entry.Flags & DsmAttachmentEntry.Pinned) != 0 && item.PinnerSlot == slot)
                    item.PinnerSlot = -1; // the pin stays; its process is gone
                if ((entry.Flags & DsmAttachmentEntry.Attached) == 0 || item.State != DsmItemState.Live || item.RefCount < 2)
                    continue; // Creating or Destroying by this process: an abandoned item, handled below
                dropped++;
                if (--item.RefCount > 1)
                    continue;
                destroyed++;
                if (BeginSupervisorDestroy(index, ref item))
                    toDestroy.Add(index);
            }
            record.Count = 0;
            record.Pid = 0;
        }
        finally
        {
            Unlock();
        }
        var (finished, failures, _) = FinishItems(candidates, toDestroy, timeout);
        _log.Write(ShmemLogLevel.Debug,
            $"reconciled dynamic shared memory of slot {slot} (process {pid}): {dropped} references dropped, {destroyed} segments destroyed");
        return new DsmReconcileResult(DsmReconcileStatus.Done, dropped, destroyed + finished, finished, failures);
    }

    /// <summary>
    /// Finishes items whose owner died: Creating (the creator died before publishing; its OS object is removed if it
    /// got that far) and Destroying (moribund: the destroyer died or failed before freeing it). Liveness is checked
    /// outside the lock and re-verified under it.
    /// </summary>
    public DsmReconcileResult FinishAbandoned(TimeSpan? lockTimeout = null)
    {
        var candidates = AbandonedCandidates();
        if (candidates.Count == 0)
            return new DsmReconcileResult(DsmReconcileStatus.Done, 0, 0, 0, 0);
        var timeout = lockTimeout ?? DefaultLockTimeout;
        var (finished, failures, timedOut) = FinishItems(candidates, new List<int>(), timeout);
        if (timedOut)
            return new DsmReconcileResult(DsmReconcileStatus.LockTimeout, 0, 0, 0, 0);
        return new DsmReconcileResult(DsmReconcileStatus.Done, 0, finished, finished, failures);
    }

    /// <summary>True when the owner record of <paramref name="slot"/> lists the DsmControl lock, or the lock word names
    /// <paramref name="pid"/> as its exclusive holder.</summary>
    private bool HeldControlLock(int slot, int pid)
    {
        var status = _lock.ReadStatus();
        if (pid != 0 && status.ExclusiveOwnerPid == pid)
            return true;
        if ((uint)slot >= (uint)_instance.Owners.SlotCount)
            return false;
        var inspector = new LWLockInspector(_instance.Owners, _instance.Tranches);
        try
        {
            foreach (var holding in inspector.HeldBy(slot))
                if (holding.Lock == _lock.Id)
                    return true;
        }
        catch (ShmemCorruptException)
        {
            return true; // an unreadable owner record proves nothing: treat the lock as held
        }
        return false;
    }

    /// <summary>Indexes of items Creating or Destroying whose owner is dead, or that this supervisor left Destroying
    /// (an earlier pass that failed). Read without the lock; verified under it later.</summary>
    private List<(int Index, uint Handle, int OwnerPid)> AbandonedCandidates()
    {
        var result = new List<(int, uint, int)>();
        int count = Math.Clamp(Volatile.Read(ref _table.Header.ItemCount), 0, _table.Capacity);
        int me = ProcessControl.CurrentPid;
        for (int i = 0; i < count; i++)
        {
            var item = _table.Item(i);
            if (item.State is not (DsmItemState.Creating or DsmItemState.Destroying))
                continue;
            bool ours = item.OwnerSlot == SupervisorSlot && item.OwnerPid == me;
            if (ours || !ProcessControl.IsAlive(item.OwnerPid))
                result.Add((i, item.Handle, item.OwnerPid));
        }
        return result;
    }

    /// <summary>Marks <paramref name="candidates"/> (re-verified) Destroying by the supervisor, removes their OS objects
    /// and those of <paramref name="toDestroy"/> outside the lock, then frees the items. Returns the number of
    /// abandoned items finished, the failures, and whether the lock could not be taken for the candidates (items
    /// left Destroying by the supervisor because the second lock timed out are picked up by the next pass).</summary>
    private (int Finished, int Failures, bool TimedOut) FinishItems(List<(int Index, uint Handle, int OwnerPid)> candidates, List<int> toDestroy,
        TimeSpan timeout)
    {
        var creators = new Dictionary<int, int>();
        int finished = 0;
        bool timedOut = false;
        if (candidates.Count > 0)
        {
            if (TryLock(timeout))
            {
                try
                {
                    finished = ClaimAbandoned(candidates, toDestroy, creators);
                }
                finally
                {
                    Unlock();
                }
            }
            else
            {
                timedOut = true;
            }
        }
        int failures = 0;
        var done = new List<int>();
        foreach (int index in toDestroy)
        {
            var item = _table.Item(index); // ours now: nobody else touches a Destroying item owned by the supervisor
            int sysVId = item.SysVId;
            int err = DsmOs.Destroy(_names, item.Implementation, DsmObjectKind.Segment, item.Handle, sysVId,
                creators.GetValueOrDefault(index));
            if (err == 0 || err == Errno.ENOENT)
            {
                _log.Write(ShmemLogLevel.Debug, $"destroyed dynamic shared memory segment {item.Handle}");
                done.Add(index);
            }
            else
            {
                failures++;
                _log.Write(ShmemLogLevel.Warning,
                    $"could not remove shared memory segment \"{_names.Describe(item.Implementation, DsmObjectKind.Segment, item.Handle)}\": {Libc.StrError(err)}");
            }
        }
        if (done.Count > 0 && TryLock(timeout))
        {
            try
            {
                foreach (int index in done)
                    if (_table.Item(index).State == DsmItemState.Destroying)
                        _table.Free(index);
            }
            finally
            {
                Unlock();
            }
        }
        return (finished, failures, timedOut);
    }

    /// <summary>Re-verifies each candidate (same handle, owner and state as seen without the lock) and makes it the
    /// supervisor's to destroy; returns how many. Remembers the creator pid of Creating items (a SysV object whose
    /// creator died before writing its header is recognised by it). Lock held.</summary>
    private int ClaimAbandoned(List<(int Index, uint Handle, int OwnerPid)> candidates, List<int> toDestroy, Dictionary<int, int> creators)
    {
        int claimed = 0;
        foreach (var (index, handle, ownerPid) in candidates)
        {
            ref var item = ref _table.Item(index);
            if (item.Handle != handle || item.OwnerPid != ownerPid ||
                item.State is not (DsmItemState.Creating or DsmItemState.Destroying))
                continue; // changed meanwhile
            creators[index] = item.State == DsmItemState.Creating ? ownerPid : 0;
            claimed++;
            if (BeginSupervisorDestroy(index, ref item))
                toDestroy.Add(index);
        }
        return claimed;
    }

    /// <summary>Item at its base count: a main-region one gives its pages back and is freed at once (false); an
    /// OS-backed one becomes Destroying with the supervisor as owner (true: remove its object, then free it).
    /// Lock held.</summary>
    private bool BeginSupervisorDestroy(int index, ref DsmControlItem item)
    {
        if (item.Implementation == DsmImplementation.MainRegion)
        {
            if (item.State == DsmItemState.Live)
                _instance.DsmMainRegion?.Free(item.FirstPage, item.PageCount);
            _table.Free(index);
            return false;
        }
        item.RefCount = 1;
        item.State = DsmItemState.Destroying;
        item.OwnerSlot = SupervisorSlot;
        item.OwnerPid = ProcessControl.CurrentPid;
        return true;
    }

    /// <summary>Takes the DsmControl lock exclusively, waiting at most <paramref name="timeout"/>. The supervisor has
    /// no owner record: if it died holding the lock, every backend goes down with it anyway.</summary>
    private bool TryLock(TimeSpan timeout)
    {
        ref var l = ref _lock.Lock;
        if (!LWLockOps.TryAcquireFast(ref l.State, LWLockMode.Exclusive) &&
            !LWLockOps.AcquireSlow(ref l.State, LWLockMode.Exclusive, Deadline.After(timeout)))
            return false;
        l.ExclusiveOwnerPid = ProcessControl.CurrentPid;
        l.ExclusiveOwnerSlot = LockOwner.NoSlot;
        return true;
    }

    private void Unlock()
    {
        ref var l = ref _lock.Lock;
        l.ExclusiveOwnerSlot = LockOwner.NoSlot;
        l.ExclusiveOwnerPid = 0;
        LWLockOps.Release(ref l.State, LWLockMode.Exclusive);
    }
}
