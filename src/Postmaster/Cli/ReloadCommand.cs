using System.CommandLine;
using Postmaster.Shmem.Os;

namespace Postmaster.Cli;

/// <summary><c>postmaster reload</c>: SIGHUP to the running server (its pid proven by the lock).</summary>
public static class ReloadCommand
{
    public static Command Create()
    {
        var cmd = new Command("reload", "Make the server re-read its configuration file (SIGHUP)") { CliOptions.DataDir };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            DataDirectoryCheck.Require(dir, ExitCodes.Failure);
            using var running = ServerControl.FindRunning(dir);
            if (running is null || !running.Signal(Signals.SIGHUP))
            {
                Report.Error($"no server running in data directory \"{dir}\"");
                return ExitCodes.Failure;
            }
            Console.WriteLine("server signaled");
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
