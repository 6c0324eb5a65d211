using System.CommandLine;

namespace Postmaster.Cli;

/// <summary>Options shared by several commands (one instance may be added to many commands).</summary>
public static class CliOptions
{
    public static readonly Option<string?> DataDir = new("--pgdata", "-D")
    {
        Description = "Data directory (default: $PMDATA)",
    };

    public static readonly Option<bool> Wait = new("--wait", "-w")
    {
        Description = "Wait until the operation completes (default)",
    };

    public static readonly Option<bool> NoWait = new("--no-wait", "-W")
    {
        Description = "Do not wait until the operation completes",
    };

    public static readonly Option<int> Timeout = new("--timeout", "-t")
    {
        Description = "Seconds to wait when waiting (default: 60)",
        DefaultValueFactory = _ => 60,
    };

    public static readonly Option<string> Mode = CreateMode();

    public static readonly Option<bool> Json = new("--json")
    {
        Description = "Print JSON instead of text",
    };

    private static Option<string> CreateMode()
    {
        var mode = new Option<string>("--mode", "-m")
        {
            Description = "Shutdown mode",
            DefaultValueFactory = _ => "fast",
        };
        mode.AcceptOnlyFromAmong("smart", "fast", "immediate", "s", "f", "i");
        return mode;
    }

    /// <summary>The data directory from -D or $PMDATA, or an error message and exit code for the caller.</summary>
    public static string? ResolveDataDir(ParseResult pr)
    {
        var dir = Daemon.DataDirectory.Resolve(pr.GetValue(DataDir));
        if (dir is null)
            Console.Error.WriteLine("postmaster: no data directory specified\n" +
                                    "You must identify the directory where the data for this server resides, " +
                                    $"with -D or the environment variable {Daemon.DataDirectory.EnvironmentVariable}.");
        return dir;
    }

    public static Supervision.ShutdownMode ParseMode(string mode) => mode[0] switch
    {
        's' => Supervision.ShutdownMode.Smart,
        'i' => Supervision.ShutdownMode.Immediate,
        _ => Supervision.ShutdownMode.Fast,
    };

    public static TimeSpan TimeoutOf(ParseResult pr) => TimeSpan.FromSeconds(Math.Max(0, pr.GetValue(Timeout)));
}
