using System.CommandLine;
using Postmaster.Shmem.Os;

namespace Postmaster.Cli;

/// <summary><c>postmaster reload</c> (SIGHUP) and <c>postmaster logrotate</c> (SIGUSR2) to the running server, its pid
/// proven by the lock, as pg_ctl's reload and logrotate.</summary>
public static class ReloadCommand
{
    public static Command Create() =>
        SignalCommand("reload", "Make the server re-read its configuration file (SIGHUP)", Signals.SIGHUP);

    public static Command CreateLogRotate() =>
        SignalCommand("logrotate", "Make the server reopen its log files, after they were moved away (SIGUSR2)", Signals.SIGUSR2);

    private static Command SignalCommand(string name, string description, int signal)
    {
        var cmd = new Command(name, description) { CliOptions.DataDir };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            DataDirectoryCheck.Require(dir, ExitCodes.Failure);
            using var running = ServerControl.FindRunning(dir);
            if (running is null || !running.Signal(signal))
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
