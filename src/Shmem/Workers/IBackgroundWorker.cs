namespace Postmaster.Workers;

/// <summary>
/// User code that runs inside a backend process. Configure it with
/// <c>worker.NAME.entry = '/path/to/Assembly.dll:Namespace.Type'</c>; the type needs a public parameterless
/// constructor. Exit semantics are PostgreSQL's background-worker ones: return 0 when the work is done (never
/// restarted), 1 to be restarted per the worker's restart policy; an exception is logged as FATAL and exits 1.
/// Any other code is treated as a crash. Stop promptly when <see cref="WorkerContext.Stopping"/> fires (SIGTERM).
/// </summary>
public interface IBackgroundWorker
{
    int Run(WorkerContext context);
}
