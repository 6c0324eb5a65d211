namespace Postmaster.Workers;

/// <summary>
/// A worker that serves client connections (<c>connection_worker = 'path/to/Assembly.dll:Namespace.Type'</c>). The
/// postmaster accepts each connection and hands it to a connection backend, which calls <see cref="Serve"/> with it.
/// <para><b>One instance per backend, many sessions.</b> The backend creates the instance once (public parameterless
/// constructor) and calls <see cref="Serve"/> for each session it is given, one at a time. A session ends when
/// <see cref="Serve"/> returns; the backend then closes the connection (if the worker did not) and, when the session
/// ended cleanly (returned normally, no lock held, no critical section open), waits for the next one, up to
/// <c>max_sessions_per_backend</c>. A session that threw, or left a lock held, ends the backend: it is never given
/// another session. What survives between sessions of one backend: the worker instance and its fields, static state,
/// attached DSM segments and anything else in the process; not: the connection, held locks (a session must release
/// them), the <see cref="ClientSession"/>.</para>
/// <para><b>Several sessions at once</b> (<c>concurrent_sessions_per_backend</c> &gt; 1): the one instance serves
/// that many sessions concurrently, so its fields are shared between them and must be safe for that. An
/// <see cref="IAsyncConnectionWorker"/> is the shape for it: its sessions run as tasks whose socket continuations run
/// inline on the process's socket event loop, so code that blocks (a long computation, a contended lock, a synchronous
/// read) delays every other session of the backend. An <see cref="IConnectionWorker"/> gets a thread per session. A
/// session that throws ends the backend and all its sessions; a lock left held is detected when no session of the
/// backend is in progress.</para>
/// <para>The type implements exactly one of <see cref="IConnectionWorker"/> and <see cref="IAsyncConnectionWorker"/>.</para>
/// </summary>
public interface IConnectionWorker
{
    /// <summary>Serves one client session; returns when it is over.</summary>
    /// <param name="context">The backend's context (shared memory, locks, log; <see cref="WorkerContext.Stopping"/>
    /// fires on fast shutdown).</param>
    /// <param name="session">The connection and what is known about it.</param>
    void Serve(WorkerContext context, ClientSession session);
}

/// <summary>The asynchronous shape of <see cref="IConnectionWorker"/>: same contract, with a task.</summary>
public interface IAsyncConnectionWorker
{
    /// <summary>Serves one client session; the task completes when it is over.</summary>
    /// <param name="context">The backend's context.</param>
    /// <param name="session">The connection and what is known about it.</param>
    /// <param name="stopping">Fires on fast shutdown, terminate and postmaster death: end the session.</param>
    Task ServeAsync(WorkerContext context, ClientSession session, CancellationToken stopping);
}
