using System.CommandLine;
using Postmaster.Daemon;
using Postmaster.Shmem.Os;

namespace Postmaster.Cli;

/// <summary><c>postmaster restart</c>: stop (if running) and start detached again with the options recorded in
/// postmaster.opts by the previous start (pg_ctl's behaviour); -c given here replaces the recorded ones.</summary>
public static class RestartCommand
{
    public static Command Create()
    {
        var cmd = new Command("restart", "Stop the server, then start it again with the same options")
        {
            CliOptions.DataDir, CliOptions.Mode, CliOptions.Timeout, StartCommand.Settings, StartCommand.LogFile,
            CliOptions.Wait, CliOptions.NoWait,
        };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            DataDirectoryCheck.Require(dir, ExitCodes.Failure);
            var timeout = CliOptions.TimeoutOf(pr);
            var (overrides, logFile) = RecordedOptions(dir);
            if (pr.GetValue(StartCommand.Settings) is { Length: > 0 } given)
                overrides = given.ToList();
            logFile = pr.GetValue(StartCommand.LogFile) ?? logFile;
            bool running;
            using (var server = ServerControl.FindRunning(dir))
                running = server is not null;
            if (!running)
                Console.Error.WriteLine("postmaster: no server running; trying to start server anyway");
            else if (ServerControl.Stop(dir, CliOptions.ParseMode(pr.GetValue(CliOptions.Mode)!), true, timeout) != ExitCodes.Ok)
                return ExitCodes.Failure;
            return StartCommand.StartDetached(dir, overrides, logFile, !pr.GetValue(CliOptions.NoWait), timeout);
        });
        return cmd;
    }

    private static (List<string> Overrides, string? LogFile) RecordedOptions(string dir)
    {
        var path = Path.Combine(dir, DataDirectory.OptionsFileName);
        var overrides = new List<string>();
        string? log = null;
        if (SmallFile.Read(path, 1 << 20, "options file") is not { } text)
            return (overrides, log);
        var args = OptionsFile.Parse(text);
        for (int i = 0; i + 1 < args.Count; i++)
        {
            if (args[i] == "-c")
                overrides.Add(args[++i]);
            else if (args[i] == "-l")
                log = args[++i];
        }
        return (overrides, log);
    }
}
