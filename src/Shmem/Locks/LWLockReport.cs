using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.Locks;

/// <summary>What is known about one lock: its word and exclusive-owner fields, and every owner record that lists it.</summary>
internal sealed record LWLockReport(LWLockId Lock, string TrancheName, LWLockStatus Status, IReadOnlyList<LWLockHolding> Holdings)
{
    /// <summary>True when the lock's exclusive owner, or any process whose record lists the lock (held or being
    /// acquired), is dead: the lock's state cannot be trusted.</summary>
    public bool IsOwnerDead =>
        (Status.ExclusiveOwnerPid != 0 && !ProcessControl.IsAlive(Status.ExclusiveOwnerPid)) ||
        Holdings.Any(h => !h.IsAlive);
}
