using Postmaster.Workers;

namespace Postmaster.Backend.Workers;

/// <summary>"spawn": starts a dynamic worker from inside a backend (argument "ENTRY[:ARGUMENT]"), logs its pid, waits
/// for it to exit or for SIGTERM, and exits 0. Demonstrates and tests RegisterDynamicBackgroundWorker.</summary>
internal sealed class SpawnWorker : IBackgroundWorker
{
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    public int Run(WorkerContext context)
    {
        var parts = context.Argument.Split(':', 2);
        string entry = parts[0];
        string argument = parts.Length > 1 ? parts[1] : "";
        var handle = context.StartDynamicWorker($"{context.Name}-child", entry, argument, StartTimeout);
        context.Log($"background worker \"{context.Name}\" started dynamic worker \"{context.Name}-child\" (PID {handle.Pid}, slot {handle.Slot})");
        while (!context.Stopping.IsCancellationRequested)
        {
            if (context.WaitForExit(handle, TimeSpan.FromSeconds(1)))
                return 0;
        }
        return 1;
    }
}
