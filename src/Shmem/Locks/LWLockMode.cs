namespace Postmaster.Shmem.Locks;

/// <summary>How a lock is held. Stored in owner records in shared memory, hence the explicit byte values.</summary>
internal enum LWLockMode : byte
{
    Shared = 1,
    Exclusive = 2,
}
