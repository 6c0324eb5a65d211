using System.CommandLine;
using Postmaster.Shmem.Backends;

namespace Postmaster.Cli;

/// <summary><c>postmaster start-worker NAME</c>: starts a configured worker that is stopped (terminate), failed (gave
/// up after restart_limit failures) or done, without restarting the server; a worker waiting for its restart delay
/// starts at once. NAME is the worker's name (every instance of its count) or one instance (NAME.N).</summary>
public static class StartWorkerCommand
{
    private static readonly Argument<string> Target = new("name") { Description = "Configured worker name (or NAME.N for one instance)" };

    public static Command Create()
    {
        var cmd = new Command("start-worker", "Start a stopped or failed configured worker again")
        {
            CliOptions.DataDir, Target, CliOptions.Timeout,
        };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            if (dir is null)
                return ExitCodes.Failure;
            string target = pr.GetValue(Target)!;
            var result = SpawnCommand.Submit(dir, WorkerRequestKind.StartWorker, "", "", "", target, CliOptions.TimeoutOf(pr));
            if (result is not { } r)
                return ExitCodes.Failure;
            if (!r.Ok)
            {
                Report.Error($"could not start worker \"{target}\": {r.Error}");
                return ExitCodes.Failure;
            }
            Console.WriteLine($"started worker \"{target}\": PID {r.Pid}, slot {r.Slot}");
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
