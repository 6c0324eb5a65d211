namespace Postmaster.Workers;

/// <summary>
/// User code that runs inside a backend process, synchronously on the backend's main thread (for an async worker,
/// see <see cref="IAsyncBackgroundWorker"/>). Configure it with
/// <c>worker.NAME.entry = '/path/to/Assembly.dll:Namespace.Type'</c>; the type needs a public parameterless
/// constructor and implements exactly one of the two worker interfaces. Exit semantics are PostgreSQL's
/// background-worker ones: return 0 when the work is done (never restarted), 1 to be restarted per the worker's
/// restart policy; an exception is logged as FATAL with its stack trace and exits 1. Any other code is treated as a
/// crash. Stop promptly when <see cref="WorkerContext.Stopping"/> fires (SIGTERM).
/// </summary>
public interface IBackgroundWorker
{
    /// <summary>The worker's work, from start to exit. Runs once per backend process.</summary>
    /// <param name="context">What the backend gives the worker: identity, stop request, shared memory, locks, log.</param>
    /// <returns>The process's exit code: 0 done, 1 restart per policy (anything else is a crash).</returns>
    int Run(WorkerContext context);
}
