using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Postmaster.Cli;

/// <summary>
/// Options shared by several commands (one instance may be added to many commands). Every value is validated where it
/// enters, by the parser: a bad value is a usage error (exit 2) with a message naming the option and what it accepts,
/// never System.CommandLine's default text (which names .NET types). Descriptions do not repeat defaults: the help
/// prints "[default: ...]" itself.
/// </summary>
public static class CliOptions
{
    /// <summary>The largest -t: seconds whose milliseconds still fit an int (poll's timeout).</summary>
    public const int MaxTimeoutSeconds = int.MaxValue / 1000;

    public const int DefaultTimeoutSeconds = 60;

    public static readonly Option<string?> DataDir = CreateDataDir();

    public static readonly Option<bool> Wait = Flag("--wait", "-w", "Wait until the operation completes (default)");

    public static readonly Option<bool> NoWait = Flag("--no-wait", "-W", "Do not wait until the operation completes");

    public static readonly Option<int> Timeout = new("--timeout", "-t")
    {
        Description = $"Seconds to wait when waiting (0 to {MaxTimeoutSeconds})",
        HelpName = "SECS",
        DefaultValueFactory = _ => DefaultTimeoutSeconds,
        CustomParser = ParseTimeout,
    };

    public static readonly Option<string> Mode = CreateMode();

    public static readonly Option<bool> Json = Flag("--json", null, "Print JSON instead of text");

    private static readonly string[] s_modes = { "smart", "fast", "immediate", "s", "f", "i" };

    /// <summary>A boolean switch that takes no value ("--json=yes" is a usage error, not a .NET parse message).</summary>
    public static Option<bool> Flag(string name, string? alias, string description)
    {
        var o = alias is null ? new Option<bool>(name) : new Option<bool>(name, alias);
        o.Description = description;
        o.Arity = ArgumentArity.Zero;
        return o;
    }

    private static Option<string?> CreateDataDir()
    {
        var o = new Option<string?>("--pgdata", "-D") { Description = "Data directory (default: $PMDATA)", HelpName = "DIR" };
        o.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && DataDirProblem(r.Tokens[0].Value) is { } problem)
                r.AddError(problem);
        });
        return o;
    }

    private static int ParseTimeout(ArgumentResult r)
    {
        if (r.Tokens.Count == 0)
            return DefaultTimeoutSeconds;
        string text = r.Tokens[0].Value;
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int seconds) && seconds <= MaxTimeoutSeconds)
            return seconds;
        r.AddError($"invalid value for option \"--timeout\": \"{text}\" (expected a whole number of seconds from 0 to {MaxTimeoutSeconds})");
        return DefaultTimeoutSeconds;
    }

    private static Option<string> CreateMode()
    {
        var mode = new Option<string>("--mode", "-m")
        {
            Description = "Shutdown mode: smart, fast or immediate (s, f, i)",
            HelpName = "MODE",
            DefaultValueFactory = _ => "fast",
        };
        mode.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && !s_modes.Contains(r.Tokens[0].Value))
                r.AddError($"invalid value for option \"--mode\": \"{r.Tokens[0].Value}\" (expected smart, fast or immediate)");
        });
        return mode;
    }

    /// <summary>Why <paramref name="path"/> cannot be a data directory path, or null. Checked where -D or $PMDATA
    /// enters: the longest file the server puts in the directory must still fit PATH_MAX, and each component
    /// NAME_MAX.</summary>
    public static string? DataDirProblem(string path) => PathProblem("data directory", path, LongestChild);

    private const int PathMax = 4096, NameMax = 255, LongestChild = 32; // "/log/postmaster.log", "/postmaster.opts.tmp.PID"

    /// <summary>Why <paramref name="path"/> cannot name <paramref name="what"/> (empty, NUL, longer than PATH_MAX
    /// less <paramref name="reserve"/> bytes, a component longer than NAME_MAX), or null.</summary>
    public static string? PathProblem(string what, string path, int reserve = 0)
    {
        if (path.Length == 0)
            return $"invalid {what}: the path is empty";
        if (path.Contains('\0'))
            return $"invalid {what}: the path contains a NUL character";
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception e) when (e is ArgumentException or PathTooLongException or NotSupportedException)
        {
            return $"invalid {what} \"{Shorten(path)}\"";
        }
        int bytes = Shmem.Text.Utf8Text.GetByteCount(full);
        int max = PathMax - 1 - reserve;
        if (bytes > max)
            return $"invalid {what} \"{Shorten(full)}\": the path is too long ({bytes} bytes; at most {max})";
        foreach (var part in full.Split('/'))
            if (Shmem.Text.Utf8Text.GetByteCount(part) > NameMax)
                return $"invalid {what} \"{Shorten(full)}\": the component \"{Shorten(part)}\" is too long (at most {NameMax} bytes)";
        return null;
    }

    /// <summary>A path shortened for a message (a 5000-byte path on one line helps nobody).</summary>
    public static string Shorten(string path) => path.Length <= 80 ? path : path[..40] + "..." + path[^30..];

    /// <summary>The data directory from -D or $PMDATA; throws a usage error when neither is given or $PMDATA is not a
    /// usable path (-D was checked by the parser).</summary>
    public static string ResolveDataDir(ParseResult pr)
    {
        string? given = pr.GetValue(DataDir);
        if (string.IsNullOrEmpty(given))
        {
            given = Environment.GetEnvironmentVariable(Daemon.DataDirectory.EnvironmentVariable);
            if (!string.IsNullOrEmpty(given) && DataDirProblem(given) is { } problem)
                throw new CliException($"{problem} (from ${Daemon.DataDirectory.EnvironmentVariable})", ExitCodes.Usage);
        }
        return Daemon.DataDirectory.Resolve(given)
               ?? throw new CliException("no data directory specified", ExitCodes.Failure,
                   hint: "You must identify the directory where the data for this server resides, " +
                         $"with -D or the environment variable {Daemon.DataDirectory.EnvironmentVariable}.");
    }

    public static Supervision.ShutdownMode ParseMode(string mode) => mode[0] switch
    {
        's' => Supervision.ShutdownMode.Smart,
        'i' => Supervision.ShutdownMode.Immediate,
        _ => Supervision.ShutdownMode.Fast,
    };

    public static TimeSpan TimeoutOf(ParseResult pr) => TimeSpan.FromSeconds(pr.GetValue(Timeout));
}
