namespace Postmaster.Shmem.Backends;

/// <summary>
/// Exit codes of a backend process that the supervisor gives a meaning beyond PostgreSQL's bgworker rules (0 done,
/// 1 restart per policy, 2 SIGQUIT, anything else a crash).
/// </summary>
internal static class BackendExitCodes
{
    /// <summary>
    /// The backend could not attach because the instance's shared memory failed validation: the main segment is
    /// missing or its header, index or a module it needs (lock tranches, lock owner records, backend slots, worker
    /// requests, DSM registry, preallocated DSM) has a wrong magic number, layout version, size, count or offset; or
    /// the main segment is not the object the postmaster recorded, or not this user's; or its backend slot or lock
    /// owner record does not hold what the postmaster prepared; or, for a pool member, the work posted in its slot is
    /// garbage. The backend logs one FATAL line (<c>shared memory is invalid: WHAT: PROBLEM</c>) and exits with this
    /// code before any worker code runs. The same holds for a <see cref="Errors.ShmemCorruptException"/> that escapes
    /// the worker (for example when the DSM control segment, attached on first use, fails validation). Restarting the backend cannot help: the supervisor treats it as "shared
    /// memory invalid" and performs a full crash restart (new segments). A data directory that is missing or not the
    /// postmaster's is not this case (exit 1).
    /// </summary>
    public const int ShmemInvalid = 3;
}
