using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.Locks;

/// <summary>
/// Supervisor-side, read-only view of locks and owner records: who holds a lock, what a slot holds, and whether a
/// holder is dead. It never takes a lock and never waits, so the supervisor can call it at any time; what it reads
/// about live processes is a racy snapshot (see <see cref="LWLockOwnerRecord"/>), what it reads about dead ones is
/// final. An entry in phase <see cref="HeldLockPhase.Acquiring"/> counts as a possible holder.
/// </summary>
internal sealed class LWLockInspector
{
    private readonly LWLockOwnerTable _owners;
    private readonly LWLockTrancheTable? _tranches;

    public LWLockInspector(LWLockOwnerTable owners, LWLockTrancheTable? tranches = null)
    {
        _owners = owners;
        _tranches = tranches;
    }

    /// <summary>The lock's decoded state plus every slot whose record lists it (scans all slots).</summary>
    public LWLockReport Inspect(in LWLockHandle lwlock)
    {
        var id = lwlock.Id;
        var holdings = new List<LWLockHolding>();
        for (int slot = 0; slot < _owners.SlotCount; slot++)
            foreach (var h in HeldBy(slot))
                if (h.Lock == id)
                    holdings.Add(h);
        return new LWLockReport(id, NameOf(lwlock.TrancheId), lwlock.ReadStatus(), holdings);
    }

    /// <summary>The locks slot <paramref name="slot"/>'s record lists, in entry order (empty for a free slot).
    /// Throws <see cref="Errors.ShmemCorruptException"/> when the record has an invalid entry.</summary>
    public unsafe IReadOnlyList<LWLockHolding> HeldBy(int slot)
    {
        var record = _owners.Record(slot);
        int pid = Volatile.Read(ref record->Pid);
        if (_owners.ReadHeldCount(slot) == 0)
            return [];
        bool alive = ProcessControl.IsAlive(pid);
        var result = new List<LWLockHolding>();
        for (int i = 0; i < LockOwner.MaxHeldLocks; i++)
        {
            var e = LWLockOwnerRecord.HeldAt(record, i); // a copy: the owner may be changing it
            if (e.Tag == 0)
                continue;
            result.Add(new LWLockHolding(slot, pid, alive, new LWLockId(e.SegmentId, e.Offset), e.TrancheId,
                NameOf(e.TrancheId), e.Mode, e.Phase));
        }
        return result;
    }

    /// <summary>True when a dead process may hold <paramref name="lwlock"/> (see <see cref="LWLockReport.IsOwnerDead"/>).</summary>
    public bool IsOwnerDead(in LWLockHandle lwlock) => Inspect(lwlock).IsOwnerDead;

    /// <summary>True when slot <paramref name="slot"/> records a pid that is no longer alive.</summary>
    public bool IsSlotOwnerDead(int slot)
    {
        int pid = _owners.RecordedPid(slot);
        return pid != 0 && !ProcessControl.IsAlive(pid);
    }

    private string NameOf(int trancheId) => _tranches?.TrancheName(trancheId) ?? $"tranche {trancheId}";
}
