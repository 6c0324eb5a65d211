using System.CommandLine;
using Postmaster.Configuration;
using Postmaster.Daemon;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;

namespace Postmaster.Cli;

/// <summary>
/// <c>postmaster start</c>: runs the daemon in the foreground (Ctrl-C = fast shutdown), or with --detach / -l as a
/// daemon in its own session with stdin from /dev/null. A detached daemon's stdout and stderr are a pipe to this
/// command until it holds the data directory's lock; only then does it open its log file (see
/// <see cref="StartupOutput"/>), so a daemon that loses a race for the directory never writes into the winner's log,
/// and this command shows exactly what its own daemon said. With -w (the default) it waits on the readiness pipe for
/// "ready" (no polling); with -W only until the daemon holds the lock (or failed before that).
/// </summary>
public static class StartCommand
{
    public const string ReadyFdVariable = "POSTMASTER_READY_FD";
    private const int ReadyFdInChild = 3;
    private const string DaemonChildFlag = "--daemon-child";
    private const string DaemonLogOption = "--daemon-log";

    public static readonly Option<string[]> Settings = new("-c")
    {
        Description = "Set a configuration parameter (name=value); may be repeated",
        HelpName = "NAME=VALUE",
        AllowMultipleArgumentsPerToken = false,
    };

    public static readonly Option<bool> Detach = CliOptions.Flag("--detach", null,
        "Run in the background as a daemon (output to DIR/log/postmaster.log unless -l is given)");

    public static readonly Option<string?> LogFile = CreateLogFile();

    /// <summary>Handled before the parser (<see cref="InitProcess.ChildArguments"/>); here for --help and to refuse
    /// it with --detach or --log.</summary>
    public static readonly Option<bool> Init = CliOptions.Flag(InitProcess.InitFlag, null,
        "Run as a minimal init in the foreground: start the server as a child, forward signals to it, reap orphaned processes (automatic as process 1)");

    private static readonly Option<bool> DaemonChild = new(DaemonChildFlag) { Hidden = true, Arity = ArgumentArity.Zero };

    private static readonly Option<string?> DaemonLog = new(DaemonLogOption) { Hidden = true };

    private static Option<string?> CreateLogFile()
    {
        var o = new Option<string?>("--log", "-l") { Description = "Run as a daemon and append its output to FILE", HelpName = "FILE" };
        o.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && CliOptions.PathProblem("log file", r.Tokens[0].Value) is { } problem)
                r.AddError(problem);
        });
        return o;
    }

    public static Command Create()
    {
        var cmd = new Command("start", "Start the server")
        {
            CliOptions.DataDir, Settings, Detach, LogFile, Init, CliOptions.Wait, CliOptions.NoWait, CliOptions.Timeout, DaemonChild, DaemonLog,
        };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            var overrides = pr.GetValue(Settings) ?? Array.Empty<string>();
            var logFile = pr.GetValue(LogFile);
            if (pr.GetValue(Init) && (pr.GetValue(Detach) || logFile is not null))
                throw new CliException("--init runs the server in the foreground; it cannot be combined with --detach or --log", ExitCodes.Usage);
            if (pr.GetValue(DaemonChild))
                return RunForeground(dir, overrides, logFile, ReadReadyFd(), pr.GetValue(DaemonLog));
            if (pr.GetValue(Detach) || logFile is not null)
                return StartDetached(dir, overrides, logFile, !pr.GetValue(CliOptions.NoWait), CliOptions.TimeoutOf(pr));
            return RunForeground(dir, overrides, null, null, null);
        });
        return cmd;
    }

    /// <summary>
    /// Fast path for the daemon child: argv is exactly what <see cref="DaemonArguments"/> produced plus
    /// "--daemon-log PATH --daemon-child" (we built it), so it is read directly instead of through System.CommandLine,
    /// which costs about 10 ms of start-up. Null when <paramref name="args"/> is not such a command line.
    /// </summary>
    public static int? TryRunDaemonChild(string[] args)
    {
        if (args.Length < 4 || args[0] != "start" || args[1] != "-D" || args[^1] != DaemonChildFlag)
            return null;
        var overrides = new List<string>();
        string? logFile = null, daemonLog = null;
        for (int i = 3; i < args.Length - 1; i += 2)
        {
            if (i + 1 >= args.Length - 1)
                return null;
            if (args[i] == "-c")
                overrides.Add(args[i + 1]);
            else if (args[i] == "-l")
                logFile = args[i + 1];
            else if (args[i] == DaemonLogOption)
                daemonLog = args[i + 1];
            else
                return null;
        }
        return RunForeground(args[2], overrides, logFile, ReadReadyFd(), daemonLog);
    }

    /// <summary>The arguments a daemon child (and postmaster.opts) get for this start.</summary>
    public static List<string> DaemonArguments(string dir, IEnumerable<string> overrides, string? logFile)
    {
        var args = new List<string> { "start", "-D", dir };
        foreach (var o in overrides)
            args.AddRange(new[] { "-c", o });
        if (logFile is not null)
            args.AddRange(new[] { "-l", logFile });
        return args;
    }

    private static int RunForeground(string dir, IReadOnlyList<string> overrides, string? logFile, int? readyFd, string? daemonLog)
    {
        var line = OptionsFile.Format(DaemonArguments(dir, overrides, logFile));
        return PostmasterServer.Run(new StartOptions(dir, overrides, readyFd, line, daemonLog));
    }

    private static int? ReadReadyFd() =>
        int.TryParse(Environment.GetEnvironmentVariable(ReadyFdVariable), out int fd) && fd >= 0 ? fd : null;

    /// <summary>
    /// Starts a detached daemon. With <paramref name="wait"/>, returns 0 only once it is ready; without, once it holds
    /// the lock. A daemon that exits first is reported with what it said (exit 1). A timeout is reported truthfully:
    /// the server did not start in time and keeps starting (exit 1, as pg_ctl).
    /// </summary>
    public static int StartDetached(string dir, IReadOnlyList<string> overrides, string? logFile, bool wait, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        if (FileStat.TryStat(dir) is null && DataDirectory.InitializeIfMissing(dir, DefaultConfigFile.Render()))
            Console.WriteLine($"initialized data directory \"{dir}\"");
        string logPath = logFile is not null ? Path.GetFullPath(logFile) : DefaultLogPath(dir);
        var (readyRead, readyWrite) = ProcessSpawner.CreatePipe();
        var (outRead, outWrite) = ProcessSpawner.CreatePipe();
        int pid;
        using (readyWrite)
        using (outWrite)
        {
            var args = DaemonArguments(dir, overrides, logFile is null ? null : logPath);
            args.AddRange(new[] { DaemonLogOption, logPath, DaemonChildFlag });
            pid = ProcessSpawner.Spawn(new SpawnOptions(
                Environment.ProcessPath ?? throw new InvalidOperationException("cannot find the postmaster executable"),
                args,
                new Dictionary<string, string> { [ReadyFdVariable] = ReadyFdInChild.ToString() },
                StdinPath: "/dev/null",
                StdoutFd: outWrite.Fd,
                InheritFds: new[] { (readyWrite.Fd, ReadyFdInChild) },
                NewSession: true));
        }
        using (readyRead)
        using (outRead)
        {
            var watch = new DaemonStartWatch(pid, readyRead, outRead);
            var outcome = watch.WaitFor(untilReady: wait, deadline);
            if (outcome == DaemonStartWatch.Outcome.Ready && !HoldsLock(dir, pid))
                outcome = DaemonStartWatch.Outcome.Exited; // said ready but does not hold the lock: report what it said
            switch (outcome)
            {
                case DaemonStartWatch.Outcome.Ready:
                    watch.ForwardOutput();
                    Console.WriteLine($"server started (PID {pid}); log: {logPath}");
                    return ExitCodes.Ok;
                case DaemonStartWatch.Outcome.Locked:
                    watch.ForwardOutput();
                    Console.WriteLine($"server starting (PID {pid}); log: {logPath}");
                    return ExitCodes.Ok;
                case DaemonStartWatch.Outcome.TimedOut:
                    watch.ForwardOutput();
                    Report.Error($"server did not start in time (waited {timeout.TotalSeconds:0} s)",
                        detail: $"The server (PID {pid}) was not stopped: it is still starting.",
                        hint: $"See \"postmaster status -D {dir}\" and the log \"{logPath}\"; -t sets how long to wait.");
                    return ExitCodes.Failure;
                default:
                    watch.ReportFailure(logPath, DateTime.UtcNow + TimeSpan.FromSeconds(Math.Max(5, (deadline - DateTime.UtcNow).TotalSeconds)));
                    return ExitCodes.Failure;
            }
        }
    }

    private static bool HoldsLock(string dir, int pid)
    {
        try
        {
            using var state = DataDirLockFile.Inspect(dir);
            return state.Holder?.Pid == pid;
        }
        catch (Shmem.Errors.ShmemException)
        {
            return false;
        }
    }

    public static string DefaultLogPath(string dir) => Path.Combine(dir, "log", "postmaster.log");
}
