using Postmaster.Shmem.Errors;

namespace Postmaster.Workers;

/// <summary>
/// What a worker gets from its backend: its identity and argument, a token fired by SIGTERM (and by the
/// postmaster's death), the instance's shared-memory services, locks, its exit callbacks and the server log. One per
/// backend process, made by the backend; its members are safe to use from any thread of the worker.
/// <para>Failures of the shared-memory services are <see cref="ShmemException"/>s (Postmaster.Shmem.dll, the engine
/// under this SDK: <see cref="LWLockException"/>, <see cref="OsCallException"/>, <see cref="ShmemCorruptException"/>)
/// with PostgreSQL-style messages and optional <see cref="ShmemException.Detail"/> and <see cref="ShmemException.Hint"/>;
/// argument errors are the usual <see cref="ArgumentException"/>s. A <see cref="ShmemCorruptException"/> escaping the
/// worker makes the postmaster rebuild shared memory (a crash restart) instead of restarting the worker.</para>
/// </summary>
public abstract class WorkerContext
{
    /// <summary>The worker's name (worker.NAME in the configuration, or --name).</summary>
    public abstract string Name { get; }

    /// <summary>worker.NAME.argument, or --argument; empty when none was given.</summary>
    public abstract string Argument { get; }

    /// <summary>This backend's slot (0 .. max_backends-1).</summary>
    public abstract int Slot { get; }

    /// <summary>Fired by SIGTERM (smart or fast shutdown, terminate) and when the postmaster dies. Made on first use:
    /// a worker that only calls <see cref="WaitUntilStopping"/> is cheaper.</summary>
    public abstract CancellationToken Stopping { get; }

    /// <summary>
    /// Sleeps until <see cref="Stopping"/> fires or <paramref name="timeout"/> passes (PostgreSQL's WaitLatch on the
    /// process latch). The cheapest way for a worker to wait: a plain monitor wait, where <c>Stopping.WaitHandle</c>
    /// costs an idle backend a wait handle, thread-local state and JIT compilation (about 0.5 MB of memory).
    /// </summary>
    /// <param name="timeout">The longest sleep; <see cref="Timeout.InfiniteTimeSpan"/>: until stopped.</param>
    /// <returns>True when the worker is to stop.</returns>
    public abstract bool WaitUntilStopping(TimeSpan timeout);

    /// <summary>Ordered exit callbacks (before-shmem, DSM detach, on-shmem, on-proc).</summary>
    public abstract ExitCallbacks Exit { get; }

    /// <summary>This process's lightweight-lock operations: acquire, release, scoped holds.</summary>
    public abstract WorkerLocks Locks { get; }

    /// <summary>Dynamic shared memory for this process: create, attach, detach, pin segments. Attached on first use
    /// (with the DSM control segment); everything still attached is detached by the exit path, between the
    /// before-shmem and on-shmem callbacks.</summary>
    public abstract DynamicSharedMemory Dsm { get; }

    /// <summary>
    /// The DSM registry (PostgreSQL's GetNamedDSMSegment): dynamic shared memory known by name to every process of the
    /// instance. <c>Registry.GetNamedSegment(name, size, init, out found)</c> creates and initialises the segment on
    /// first use in the instance (found = false; <c>init</c> runs exactly once, on zeroed memory) and attaches it
    /// everywhere else (found = true); the mapping lasts until the worker exits.
    /// </summary>
    public abstract DsmRegistry Registry { get; }

    /// <summary>Named space in the main segment (PostgreSQL's ShmemInitStruct): the first caller in the instance
    /// gets zeroed memory and <paramref name="found"/> = false; everyone else the same memory and true. The space
    /// lasts as long as the instance's shared memory (until shutdown or a crash restart) and is never freed.
    /// Throws <see cref="ArgumentException"/> for an empty name or one over 63 bytes, and
    /// <see cref="ShmemException"/> when the size differs from the existing allocation's or the main segment has no
    /// room left (<c>shared_memory_size</c>).</summary>
    /// <param name="name">The allocation's name, shown by <c>postmaster shmem</c>.</param>
    /// <param name="size">Bytes; every caller must ask for the same size.</param>
    /// <param name="found">False for the caller that made it.</param>
    public abstract ShmemRegion InitStruct(string name, long size, out bool found);

    /// <summary>A lock in the main segment known by <paramref name="name"/>, created (with a tranche of that name)
    /// by the first caller in the instance; every process gets the same lock for the same name.</summary>
    /// <param name="name">The lock's name, shown by <c>postmaster shmem</c>.</param>
    public abstract LWLockHandle NamedLock(string name);

    /// <summary>
    /// PostgreSQL's RegisterDynamicBackgroundWorker + WaitForBackgroundWorkerStartup: asks the postmaster to start a
    /// dynamic worker (never restarted) and waits until it has a pid. Throws <see cref="InvalidOperationException"/>
    /// with the postmaster's reason when it refuses (e.g. max_backends reached), or on timeout.
    /// </summary>
    /// <param name="name">The new worker's name.</param>
    /// <param name="entry">A built-in worker's name or "path/to/Assembly.dll:Namespace.Type".</param>
    /// <param name="argument">Its <see cref="Argument"/>.</param>
    /// <param name="timeout">How long to wait for it to start.</param>
    public abstract DynamicWorkerHandle StartDynamicWorker(string name, string entry, string argument, TimeSpan timeout);

    /// <summary>Waits until the worker behind <paramref name="handle"/> has exited, or this worker is to stop.</summary>
    /// <param name="handle">From <see cref="StartDynamicWorker"/>.</param>
    /// <param name="timeout">The longest wait.</param>
    /// <returns>True when it has exited; false on timeout or a stop request.</returns>
    public abstract bool WaitForExit(DynamicWorkerHandle handle, TimeSpan timeout);

    /// <summary>Writes a LOG line to the server log with this backend's pid.</summary>
    /// <param name="message">One line, PostgreSQL style (lower case, objects quoted).</param>
    public abstract void Log(string message);

    /// <summary>Writes a WARNING to the server log.</summary>
    /// <param name="message">One line, PostgreSQL style.</param>
    public abstract void Warning(string message);

    /// <summary>Writes a DEBUG1 line to the server log: shown only when <c>log_min_messages</c> is debug1 or more
    /// verbose (it follows reloads).</summary>
    /// <param name="message">One line, PostgreSQL style.</param>
    public abstract void Debug(string message);
}
