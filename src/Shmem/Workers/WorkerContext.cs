using Postmaster.Shmem;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Registry;

namespace Postmaster.Workers;

/// <summary>
/// What a worker gets from its backend: its identity and argument, a token fired by SIGTERM (and by the
/// postmaster's death), the instance's shared-memory services, and its exit callbacks. One per backend process;
/// its members are safe to use from any thread of the worker.
/// </summary>
public abstract class WorkerContext
{
    /// <summary>The worker's name (worker.NAME in the configuration, or --name).</summary>
    public abstract string Name { get; }

    /// <summary>worker.NAME.argument, or --argument.</summary>
    public abstract string Argument { get; }

    /// <summary>This backend's slot (0 .. max_backends-1).</summary>
    public abstract int Slot { get; }

    /// <summary>Fired by SIGTERM (smart or fast shutdown, terminate) and when the postmaster dies.</summary>
    public abstract CancellationToken Stopping { get; }

    /// <summary>
    /// Sleeps until <see cref="Stopping"/> fires or <paramref name="timeout"/> passes (PostgreSQL's WaitLatch on the
    /// process latch); true when the worker is to stop. The cheapest way for a worker to wait: a plain monitor wait,
    /// where <c>Stopping.WaitHandle</c> costs an idle backend a wait handle, thread-local state and JIT compilation
    /// (about 0.5 MB of memory).
    /// </summary>
    public abstract bool WaitUntilStopping(TimeSpan timeout);

    /// <summary>Ordered exit callbacks (before-shmem, DSM detach, on-shmem, on-proc).</summary>
    public abstract ExitCallbacks Exit { get; }

    /// <summary>This process's lock owner: acquire and release shared locks through it.</summary>
    public abstract LockOwner Locks { get; }

    /// <summary>Dynamic shared memory for this process: create, attach, detach, pin segments. The session (and the DSM
    /// control segment) is attached on first use. Everything still attached is detached by the exit path, between the
    /// before-shmem and on-shmem callbacks.</summary>
    public abstract DsmSession Dsm { get; }

    /// <summary>
    /// The DSM registry (PostgreSQL's GetNamedDSMSegment): dynamic shared memory known by name to every process of the
    /// instance. <c>Registry.GetNamedSegment(name, size, init, out found)</c> creates and initialises the segment on
    /// first use in the instance (found = false; <c>init</c> runs exactly once, on zeroed memory) and attaches it
    /// everywhere else (found = true); the mapping lasts until the worker exits. Segments outlive the worker that made
    /// them, until <c>Registry.Release(name)</c>, shutdown or a full restart. Safe from any thread of the worker.
    /// </summary>
    public abstract DsmRegistry Registry { get; }

    /// <summary>Named space in the main segment (PostgreSQL's ShmemInitStruct): the first caller in the instance
    /// gets zeroed memory and <paramref name="found"/> = false; everyone else the same memory and true.</summary>
    public abstract ShmemRegion InitStruct(string name, long size, out bool found);

    /// <summary>A lock in the main segment known by <paramref name="name"/>, created (with a tranche of that name)
    /// by the first caller in the instance.</summary>
    public abstract LWLockHandle NamedLock(string name);

    /// <summary>
    /// PostgreSQL's RegisterDynamicBackgroundWorker + WaitForBackgroundWorkerStartup: asks the postmaster to start a
    /// dynamic worker (never restarted) and waits until it has a pid. Throws <see cref="InvalidOperationException"/>
    /// with the postmaster's reason when it refuses (e.g. max_backends reached), or on timeout.
    /// </summary>
    public abstract DynamicWorkerHandle StartDynamicWorker(string name, string entry, string argument, TimeSpan timeout);

    /// <summary>Waits until the worker behind <paramref name="handle"/> has exited; false on timeout.</summary>
    public abstract bool WaitForExit(DynamicWorkerHandle handle, TimeSpan timeout);

    /// <summary>Writes to the server log with this backend's pid (severity LOG).</summary>
    public abstract void Log(string message);

    /// <summary>Writes a WARNING to the server log.</summary>
    public abstract void Warning(string message);
}
