namespace Postmaster.Shmem.Backends;

/// <summary>
/// Exit codes of a backend process that the supervisor gives a meaning beyond PostgreSQL's bgworker rules (0 done,
/// 1 restart per policy, 2 SIGQUIT, anything else a crash).
/// </summary>
public static class BackendExitCodes
{
    /// <summary>
    /// The backend could not attach because the instance's shared memory failed validation: the main segment is
    /// missing or its header, index or a module it needs (lock tranches, lock owner records, backend slots, worker
    /// requests, DSM registry, preallocated DSM) has a wrong magic number, layout version, size, count or offset, or
    /// its slot does not hold what the postmaster wrote. The backend logs one FATAL line naming what is invalid and
    /// exits with this code before touching anything shared. Restarting the backend cannot help: the supervisor treats
    /// it as "shared memory invalid" and performs a full crash restart (new segments).
    /// </summary>
    public const int ShmemInvalid = 3;
}
