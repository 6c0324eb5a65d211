using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.Locks;

/// <summary>What is known about one lock: its word and exclusive-owner fields, and every owner record that lists it.</summary>
// Public only while LockOwner, LWLockOwnerTable, LWLockInspector and LWLockHold are (their owner makes them
// internal); internal with them. tests/Postmaster.Tests/Sdk/PublicApiTests checks it.
public sealed record LWLockReport(LWLockId Lock, string TrancheName, LWLockStatus Status, IReadOnlyList<LWLockHolding> Holdings)
{
    /// <summary>True when the lock's exclusive owner, or any process whose record lists the lock (held or being
    /// acquired), is dead: the lock's state cannot be trusted.</summary>
    public bool IsOwnerDead =>
        (Status.ExclusiveOwnerPid != 0 && !ProcessControl.IsAlive(Status.ExclusiveOwnerPid)) ||
        Holdings.Any(h => !h.IsAlive);
}
