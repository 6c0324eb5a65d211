using Postmaster.Shmem.Dsm;
using Postmaster.Workers;

namespace Postmaster.Backend;

/// <summary>
/// The backend's DSM session, created on the worker's first use of dynamic shared memory (or of the registry):
/// attaching the DSM control segment is work, and memory, that a worker which never uses DSM should not pay for
/// (PostgreSQL also attaches it lazily). Thread-safe; <see cref="Created"/> is what the exit path detaches.
/// </summary>
internal sealed class LazyDsmSession(Func<DsmSession> create)
{
    private readonly object _gate = new();
    private DsmSession? _session;
    private DynamicSharedMemory? _facade;

    public DsmSession Session
    {
        get
        {
            lock (_gate)
                return _session ??= create();
        }
    }

    /// <summary>The worker SDK's view of the session (<see cref="WorkerContext.Dsm"/>), made with it.</summary>
    public DynamicSharedMemory Facade
    {
        get
        {
            lock (_gate)
                return _facade ??= new DynamicSharedMemory(_session ??= create());
        }
    }

    /// <summary>The session if one was created, else null.</summary>
    public DsmSession? Created
    {
        get
        {
            lock (_gate)
                return _session;
        }
    }
}
