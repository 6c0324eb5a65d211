using System.CommandLine;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Text;

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
            DataDirectoryCheck.Require(dir, ExitCodes.Failure);
            string target = pr.GetValue(Target)!;
            if (Utf8Text.GetByteCount(target) > WorkerStatusTable.MaxNameBytes || target.Length == 0 || target.StartsWith('-'))
            {
                Report.Error(target.StartsWith('-') ? $"unrecognized option \"{target}\"" : $"invalid worker name \"{CliOptions.Shorten(target)}\"");
                return ExitCodes.Usage;
            }
            if (InstanceAccess.AttachRunning(dir) is not var (server, shmem))
                return ExitCodes.Failure;
            WorkerRequestResult? result;
            using (server)
            using (shmem)
                result = SpawnCommand.Submit(server, shmem, WorkerRequestKind.StartWorker, "", "", "", target, CliOptions.TimeoutOf(pr));
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
