namespace Postmaster.Shmem.Locks;

/// <summary>How a lock is held. Stored in owner records in shared memory, hence the explicit byte values.</summary>
// Public only while LockOwner, LWLockOwnerTable, LWLockInspector and LWLockHold are (their owner makes them
// internal); internal with them. tests/Postmaster.Tests/Sdk/PublicApiTests checks it.
public enum LWLockMode : byte
{
    Shared = 1,
    Exclusive = 2,
}
