using System.CommandLine;

namespace Postmaster.Cli;

/// <summary><c>postmaster stop -m smart|fast|immediate</c>: SIGTERM / SIGINT / SIGQUIT, then wait for the lock to go.</summary>
public static class StopCommand
{
    public static Command Create()
    {
        var cmd = new Command("stop", "Stop the server")
        {
            CliOptions.DataDir, CliOptions.Mode, CliOptions.Wait, CliOptions.NoWait, CliOptions.Timeout,
        };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            DataDirectoryCheck.Require(dir, ExitCodes.Failure);
            return ServerControl.Stop(dir, CliOptions.ParseMode(pr.GetValue(CliOptions.Mode)!), !pr.GetValue(CliOptions.NoWait),
                CliOptions.TimeoutOf(pr));
        });
        return cmd;
    }
}
