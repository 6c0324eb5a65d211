using System.CommandLine;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Os;

namespace Postmaster.Cli;

/// <summary><c>postmaster terminate PID|NAME</c>: the postmaster sends SIGTERM to that backend (or every instance of a
/// static worker NAME) and does not restart it; waits until it has exited unless -W.</summary>
public static class TerminateCommand
{
    private static readonly Argument<string> Target = new("target") { Description = "Backend PID, or worker name" };

    public static Command Create()
    {
        var cmd = new Command("terminate", "Stop one backend with SIGTERM (it is not restarted)")
        {
            CliOptions.DataDir, Target, CliOptions.Wait, CliOptions.NoWait, CliOptions.Timeout,
        };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            if (dir is null)
                return ExitCodes.Failure;
            string target = pr.GetValue(Target)!;
            var timeout = CliOptions.TimeoutOf(pr);
            var result = SpawnCommand.Submit(dir, WorkerRequestKind.Terminate, "", "", "", target, timeout);
            if (result is not { } r)
                return ExitCodes.Failure;
            if (!r.Ok)
            {
                Report.Error($"could not terminate \"{target}\": {r.Error}");
                return ExitCodes.Failure;
            }
            if (!pr.GetValue(CliOptions.NoWait))
            {
                var deadline = DateTime.UtcNow + timeout;
                while (ProcessControl.IsAlive(r.Pid) && DateTime.UtcNow < deadline)
                    Thread.Sleep(1);
            }
            // r.Generation: for terminate, the number of backends signalled (see PostmasterLoop.ServeRequests).
            Console.WriteLine(r.Generation > 1 ? $"terminated {r.Generation} backends" : $"terminated backend PID {r.Pid}");
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
