namespace Postmaster.Shmem.Backends;

/// <summary>Exit codes with a meaning for the postmaster, beyond 0 (done) and 1 (failed, restart per policy).</summary>
public static class BackendExitCodes
{
    /// <summary>The backend could not attach because shared memory failed validation: a full crash restart.</summary>
    public const int ShmemInvalid = 3;
}
