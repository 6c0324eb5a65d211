using Postmaster.Workers;

namespace Postmaster.Backend.Workers;

/// <summary>"idle": attaches and waits for SIGTERM. Exits 1 when stopped, like a PostgreSQL background worker
/// terminated by an administrator.</summary>
internal sealed class IdleWorker : IBackgroundWorker
{
    public int Run(WorkerContext context)
    {
        context.WaitUntilStopping(Timeout.InfiniteTimeSpan);
        return 1;
    }
}
