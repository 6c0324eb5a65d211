namespace Postmaster.Shmem.Locks;

/// <summary>Where an owner-record entry stands. Stored in shared memory, hence the explicit byte values.</summary>
internal enum HeldLockPhase : byte
{
    /// <summary>Recorded before the acquiring CAS: the process is trying to take the lock, is sleeping for it,
    /// or has just taken it and not yet said so. A dead process with such an entry may hold the lock, or may have
    /// left itself counted as a waiter in the lock word: treat it as a holder.</summary>
    Acquiring = 1,

    /// <summary>The lock is held.</summary>
    Held = 2,
}
