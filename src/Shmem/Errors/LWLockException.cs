namespace Postmaster.Shmem.Errors;

/// <summary>A lightweight-lock usage error in this process: too many locks held, re-acquiring a held lock, releasing
/// one that is not held. The message names the lock. Nothing in shared memory has changed when this is thrown.</summary>
public sealed class LWLockException(string message, string? detail = null, string? hint = null)
    : ShmemException(message, detail, hint);
