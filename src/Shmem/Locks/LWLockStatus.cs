namespace Postmaster.Shmem.Locks;

/// <summary>A decoded snapshot of one lock's word and owner fields, read without locking (so possibly stale by the
/// time it is looked at). For diagnostics and the supervisor's inspection; never a basis for acquiring.</summary>
internal readonly record struct LWLockStatus(
    bool IsExclusive,
    int SharedHolders,
    int ExclusiveWaiters,
    bool HasWaiters,
    int ExclusiveOwnerPid,
    int ExclusiveOwnerSlot)
{
    public bool IsFree => !IsExclusive && SharedHolders == 0;

    internal static LWLockStatus Decode(int state, int pid, int slot) => new(
        (state & LWLockOps.ExclusiveBit) != 0,
        LWLockOps.SharedHolders(state),
        LWLockOps.ExclusiveWaiters(state),
        (state & LWLockOps.HasWaitersBit) != 0,
        pid,
        slot);
}
