using Postmaster.Workers;

namespace Postmaster.Backend.Workers;

/// <summary>"dsm-attach": argument "HANDLE[,HANDLE...]": attaches each segment, logs it, and keeps it until stopped.
/// A handle that is gone is logged and skipped.</summary>
internal sealed class DsmAttachWorker : IBackgroundWorker
{
    public int Run(WorkerContext context)
    {
        foreach (var text in context.Argument.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var seg = context.Dsm.Attach(DsmHandle.Parse(text));
            context.Log(seg is null
                ? $"dynamic shared memory segment {text} no longer exists"
                : $"attached dynamic shared memory segment {seg.Handle} ({seg.Size} bytes)");
        }
        context.WaitUntilStopping(Timeout.InfiniteTimeSpan);
        return 1;
    }
}
