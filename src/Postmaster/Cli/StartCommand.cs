using System.CommandLine;
using Postmaster.Configuration;
using Postmaster.Daemon;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;

namespace Postmaster.Cli;

/// <summary>
/// <c>postmaster start</c>: runs the daemon in the foreground (Ctrl-C = fast shutdown), or with --detach / -l as a
/// daemon in its own session with stdin from /dev/null and output to the log file. Detached, it waits (-w, the
/// default) on a readiness pipe the daemon writes "ready" to, so there is no polling; EOF before "ready" means the
/// daemon exited, and its last log lines are shown.
/// </summary>
public static class StartCommand
{
    public const string ReadyFdVariable = "POSTMASTER_READY_FD";
    private const int ReadyFdInChild = 3;

    public static readonly Option<string[]> Settings = new("-c")
    {
        Description = "Set a configuration parameter (name=value); may be repeated",
        AllowMultipleArgumentsPerToken = false,
    };

    public static readonly Option<bool> Detach = new("--detach")
    {
        Description = "Run in the background as a daemon (output to DIR/log/postmaster.log unless -l is given)",
    };

    public static readonly Option<string?> LogFile = new("--log", "-l")
    {
        Description = "Run as a daemon and append its output to FILE",
    };

    private static readonly Option<bool> DaemonChild = new("--daemon-child") { Hidden = true };

    public static Command Create()
    {
        var cmd = new Command("start", "Start the server")
        {
            CliOptions.DataDir, Settings, Detach, LogFile, CliOptions.Wait, CliOptions.NoWait, CliOptions.Timeout, DaemonChild,
        };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            if (dir is null)
                return ExitCodes.Failure;
            var overrides = pr.GetValue(Settings) ?? Array.Empty<string>();
            var logFile = pr.GetValue(LogFile);
            if (pr.GetValue(DaemonChild))
                return RunForeground(dir, overrides, logFile, ReadReadyFd());
            if (pr.GetValue(Detach) || logFile is not null)
                return StartDetached(dir, overrides, logFile, !pr.GetValue(CliOptions.NoWait), CliOptions.TimeoutOf(pr));
            return RunForeground(dir, overrides, null, null);
        });
        return cmd;
    }

    /// <summary>
    /// Fast path for the daemon child: argv is exactly what <see cref="DaemonArguments"/> produced plus
    /// "--daemon-child" (we built it), so it is read directly instead of through System.CommandLine, which costs
    /// about 10 ms of start-up. Null when <paramref name="args"/> is not such a command line.
    /// </summary>
    public static int? TryRunDaemonChild(string[] args)
    {
        if (args.Length < 4 || args[0] != "start" || args[1] != "-D" || args[^1] != "--daemon-child")
            return null;
        var overrides = new List<string>();
        string? logFile = null;
        for (int i = 3; i < args.Length - 1; i += 2)
        {
            if (i + 1 >= args.Length - 1)
                return null;
            if (args[i] == "-c")
                overrides.Add(args[i + 1]);
            else if (args[i] == "-l")
                logFile = args[i + 1];
            else
                return null;
        }
        return RunForeground(args[2], overrides, logFile, ReadReadyFd());
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

    private static int RunForeground(string dir, IReadOnlyList<string> overrides, string? logFile, int? readyFd)
    {
        var line = OptionsFile.Format(DaemonArguments(dir, overrides, logFile));
        return PostmasterServer.Run(new StartOptions(dir, overrides, readyFd, line));
    }

    private static int? ReadReadyFd() =>
        int.TryParse(Environment.GetEnvironmentVariable(ReadyFdVariable), out int fd) && fd >= 0 ? fd : null;

    /// <summary>Starts a detached daemon; with <paramref name="wait"/> returns 0 only once it is ready.</summary>
    public static int StartDetached(string dir, IReadOnlyList<string> overrides, string? logFile, bool wait, TimeSpan timeout)
    {
        if (!Directory.Exists(dir))
        {
            try
            {
                DataDirectory.Initialize(dir, DefaultConfigFile.Render());
            }
            catch (StartupException e)
            {
                Report.Error(e.Message, e.Detail, e.Hint);
                return ExitCodes.Failure;
            }
            Console.WriteLine($"initialized data directory \"{dir}\"");
        }
        string logPath = logFile is not null ? Path.GetFullPath(logFile) : DefaultLogPath(dir);
        FileStream log;
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(logPath)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            log = new FileStream(logPath, new FileStreamOptions
            {
                Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.ReadWrite | FileShare.Delete,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Report.Error($"could not open log file \"{logPath}\": {e.Message}");
            return ExitCodes.Failure;
        }
        var (readEnd, writeEnd) = ProcessSpawner.CreatePipe();
        int pid;
        using (log)
        using (writeEnd)
        {
            var args = DaemonArguments(dir, overrides, logFile is null ? null : logPath);
            args.Add("--daemon-child");
            pid = ProcessSpawner.Spawn(new SpawnOptions(
                Environment.ProcessPath ?? throw new InvalidOperationException("cannot find the postmaster executable"),
                args,
                new Dictionary<string, string> { [ReadyFdVariable] = ReadyFdInChild.ToString() },
                StdinPath: "/dev/null",
                StdoutFd: (int)log.SafeFileHandle.DangerousGetHandle(),
                InheritFds: new[] { (writeEnd.Fd, ReadyFdInChild) },
                NewSession: true));
        }
        using (readEnd)
        {
            if (!wait)
            {
                Console.WriteLine($"server starting (PID {pid}); log: {logPath}");
                return ExitCodes.Ok;
            }
            var answer = ProcessSpawner.ReadWithTimeout(readEnd, (int)Math.Min(int.MaxValue, timeout.TotalMilliseconds));
            if (answer is null)
            {
                Report.Error($"server (PID {pid}) did not start in time ({timeout.TotalSeconds:0} s)",
                    hint: $"It may still be starting; see \"{logPath}\" and \"postmaster status -D {dir}\".");
                return ExitCodes.Failure;
            }
            if (answer.StartsWith("ready", StringComparison.Ordinal))
            {
                var (locked, contents) = DataDirLockFile.Probe(dir);
                if (locked && contents?.Pid == pid)
                {
                    Console.WriteLine($"server started (PID {pid}); log: {logPath}");
                    return ExitCodes.Ok;
                }
            }
            var exit = WaitForExit(pid, timeout);
            Report.Error("could not start server" + (exit is { } x ? $": {x.Describe("postmaster")}" : ""),
                detail: TailOfLog(logPath), hint: $"Examine the log output in \"{logPath}\".");
            return ExitCodes.Failure;
        }
    }

    public static string DefaultLogPath(string dir) => Path.Combine(dir, "log", "postmaster.log");

    /// <summary>The daemon closed the readiness pipe: it is exiting. Reap it (it is our child) so no zombie stays.</summary>
    private static ChildExit? WaitForExit(int pid, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (ProcessSpawner.TryReap(pid) is { } exit)
                return exit;
            Thread.Sleep(1);
        }
        return null;
    }

    /// <summary>The FATAL/ERROR/DETAIL/HINT lines among the last lines of the log, for the user's terminal.</summary>
    private static string? TailOfLog(string path)
    {
        const int TailLines = 40;
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var r = new StreamReader(fs);
            var lines = r.ReadToEnd().Split('\n').TakeLast(TailLines)
                .Where(l => l.Contains("FATAL:") || l.Contains("ERROR:") || l.Contains("DETAIL:") || l.Contains("HINT:") ||
                            l.Contains(" LOG:  ") && (l.Contains(" line ") || l.Contains("command line")))
                .ToList();
            return lines.Count == 0 ? null : "\n" + string.Join('\n', lines);
        }
        catch (IOException)
        {
            return null;
        }
    }
}
