using System.Diagnostics;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;

namespace Postmaster.Bench;

/// <summary>
/// Issue 2's figures: `start --detach -w` and `stop -m fast` wall time through the CLI, the daemon's own
/// exec → ready (readiness pipe) and fast stop signal → lock file gone, with 128MB and 1GB of shared memory,
/// next to a bare .NET hello-world process start measured in the same run. Medians of <see cref="Runs"/>.
/// </summary>
public static class StartupBench
{
    public const int Runs = 15;
    private static readonly string[] s_sizes = { "128MB", "1GB" };

    public static void Run()
    {
        double hello = Stats.Median(Enumerable.Range(0, Runs + 2).Select(_ => TimeProcess(BenchPaths.Hello)).Skip(2).ToList());
        Console.WriteLine($"Medians of {Runs} runs; baseline: bare .NET hello world, start to exit, {hello:F1} ms.\n");
        Console.WriteLine("| shared memory | type | CLI `start --detach -w` | daemon exec → ready | CLI `stop -m fast` | SIGINT → lock file gone | start ÷ hello |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var type in new[] { "sysv", "posix" })
        foreach (var size in s_sizes)
        {
            var dir = Path.Combine(Path.GetTempPath(), $"pmbench-{Environment.ProcessId}-{type}-{size}");
            if (Directory.Exists(dir))
                Directory.Delete(dir, true);
            Cli("init", "-D", dir);
            WithoutBackends(dir);
            var cliStart = new List<double>();
            var cliStop = new List<double>();
            var exec = new List<double>();
            var stop = new List<double>();
            var settings = new[] { "-c", $"shared_memory_size={size}", "-c", $"shared_memory_type={type}" };
            for (int i = 0; i < Runs + 1; i++)
            {
                cliStart.Add(TimeProcess(BenchPaths.Postmaster, new[] { "start", "-D", dir, "--detach" }.Concat(settings).ToArray()));
                cliStop.Add(TimeProcess(BenchPaths.Postmaster, "stop", "-D", dir, "-m", "fast"));
                var (ready, gone) = DirectStartStop(dir, settings);
                exec.Add(ready);
                stop.Add(gone);
            }
            Directory.Delete(dir, true);
            // the first iteration warms the page cache; drop it
            double s = Stats.Median(cliStart.Skip(1).ToList());
            Console.WriteLine($"| {size} | {type} | {s:F1} ms | {Stats.Median(exec.Skip(1).ToList()):F1} ms | " +
                              $"{Stats.Median(cliStop.Skip(1).ToList()):F1} ms | {Stats.Median(stop.Skip(1).ToList()):F2} ms | {s / hello:F2}× |");
        }
        Console.WriteLine();
        SideBySideWithPostgres();
    }

    /// <summary>
    /// The CLI as a user meets it, next to PostgreSQL 15's pg_ctl in the same run (when installed): <c>start --detach -w</c>
    /// against <c>pg_ctl start -w</c>, <c>status</c> against <c>pg_ctl status</c>, and <c>--version</c>, with 128MB of
    /// System V shared memory and no backends. As root, PostgreSQL runs as the postgres user through runuser, whose own
    /// cost (runuser of /bin/true) is measured and subtracted.
    /// </summary>
    private static void SideBySideWithPostgres()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"pmbench-{Environment.ProcessId}-side");
        if (Directory.Exists(dir))
            Directory.Delete(dir, true);
        Cli("init", "-D", dir);
        WithoutBackends(dir);
        var start = new List<double>();
        var status = new List<double>();
        var version = new List<double>();
        for (int i = 0; i < Runs + 1; i++)
        {
            start.Add(TimeProcess(BenchPaths.Postmaster, "start", "-D", dir, "--detach", "-w", "-c", "shared_memory_size=128MB"));
            status.Add(TimeProcess(BenchPaths.Postmaster, "status", "-D", dir));
            version.Add(TimeProcess(BenchPaths.Postmaster, "--version"));
            Cli("stop", "-D", dir, "-m", "fast");
        }
        Directory.Delete(dir, true);
        double ours = Stats.Median(start.Skip(1).ToList()), oursStatus = Stats.Median(status.Skip(1).ToList());
        var pg = MeasurePgCtl();
        Console.WriteLine("| what | postmaster | PostgreSQL 15 (pg_ctl) | ratio | target |");
        Console.WriteLine("|---|---|---|---|---|");
        Console.WriteLine($"| `start --detach -w` (128MB System V, no backends) | {ours:F1} ms | {(pg is null ? "not installed" : $"{pg.Value.Start:F1} ms")} | " +
                          $"{(pg is null ? "" : $"{ours / pg.Value.Start:F2}×")} | ≤ 0.2× |");
        Console.WriteLine($"| `status` | {oursStatus:F1} ms | {(pg is null ? "" : $"{pg.Value.Status:F1} ms")} | {(pg is null ? "" : $"{oursStatus / pg.Value.Status:F2}×")} | ≤ 10 ms |");
        Console.WriteLine($"| `--version` | {Stats.Median(version.Skip(1).ToList()):F1} ms | | | report |");
        Console.WriteLine();
    }

    /// <summary>pg_ctl start -w and pg_ctl status medians (ms), runuser's own cost subtracted; null without PostgreSQL.</summary>
    private static (double Start, double Status)? MeasurePgCtl()
    {
        string? bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin"))
                .Where(b => File.Exists(Path.Combine(b, "pg_ctl"))).Order().LastOrDefault()
            : null;
        if (bin is null)
            return null;
        bool root = ProcessControl.EffectiveUid == 0;
        string pgctl = Path.Combine(bin, "pg_ctl");
        string dir = Path.Combine(Path.GetTempPath(), $"pmbench-{Environment.ProcessId}-pgside");
        string[] As(string exe, params string[] args) => root ? ["-u", "postgres", "--", exe, .. args] : args;
        string runner = root ? "/usr/sbin/runuser" : pgctl;
        double Timed(string exe, params string[] args) => root ? TimeQuiet(runner, As(exe, args)) : TimeQuiet(exe, args);
        double overhead = root ? Stats.Median(Enumerable.Range(0, Runs + 1).Select(_ => TimeQuiet(runner, As("/bin/true"))).Skip(1).ToList()) : 0;
        if (root)
            TimeQuiet(runner, "-u", "postgres", "--", "/bin/mkdir", "-m", "0700", dir);
        else
            Directory.CreateDirectory(dir);
        Timed(Path.Combine(bin, "initdb"), "-D", dir, "-A", "trust", "-U", "postgres", "--no-sync");
        int port = 20000 + Environment.ProcessId % 20000;
        var start = new List<double>();
        var status = new List<double>();
        try
        {
            for (int i = 0; i < Runs + 1; i++)
            {
                start.Add(Timed(pgctl, "-D", dir, "-w", "-l", Path.Combine(dir, "server.log"), "-o",
                    $"-p {port} -k {dir} -c listen_addresses='' -c shared_buffers=128MB -c fsync=off", "start") - overhead);
                status.Add(Timed(pgctl, "-D", dir, "status") - overhead);
                Timed(pgctl, "-D", dir, "-m", "fast", "-w", "stop");
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
        Console.WriteLine($"(PostgreSQL through runuser: its own {overhead:F1} ms subtracted)");
        return (Stats.Median(start.Skip(1).ToList()), Stats.Median(status.Skip(1).ToList()));
    }

    /// <summary>Only the daemon's exec → ready median (quick check while tuning startup).</summary>
    public static void Quick()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"pmbench-{Environment.ProcessId}-quick");
        if (Directory.Exists(dir))
            Directory.Delete(dir, true);
        Cli("init", "-D", dir);
        WithoutBackends(dir);
        var settings = new[] { "-c", "shared_memory_size=128MB" };
        var exec = Enumerable.Range(0, Runs + 1).Select(_ => DirectStartStop(dir, settings).ReadyMs).Skip(1).ToList();
        double hello = Stats.Median(Enumerable.Range(0, Runs + 2).Select(_ => TimeProcess(BenchPaths.Hello)).Skip(2).ToList());
        Directory.Delete(dir, true);
        Console.WriteLine($"exec -> ready median {Stats.Median(exec):F1} ms (hello {hello:F1} ms)");
    }

    /// <summary>Spawns the daemon directly with a readiness pipe: exec → "ready"; then SIGINT → lock file removed.</summary>
    private static (double ReadyMs, double StopMs) DirectStartStop(string dir, string[] settings)
    {
        var (r, w) = ProcessSpawner.CreatePipe();
        long t0 = Stopwatch.GetTimestamp();
        int pid;
        using (w)
            pid = ProcessSpawner.Spawn(new SpawnOptions(BenchPaths.Postmaster,
                new[] { "start", "-D", dir }.Concat(settings).Append("--daemon-child").ToArray(),
                new Dictionary<string, string> { ["POSTMASTER_READY_FD"] = "3" },
                StdinPath: "/dev/null", StdoutFd: null, InheritFds: new[] { (w.Fd, 3) }, NewSession: true));
        // The readiness pipe says "locked OFFSET" once the lock is held, then "ready".
        string answer = "";
        using (r)
            while (!answer.Contains("ready\n") && ProcessSpawner.ReadWithTimeout(r, 60_000) is { Length: > 0 } part)
                answer += part;
        long t1 = Stopwatch.GetTimestamp();
        if (!answer.Contains("ready\n"))
        {
            ProcessControl.Signal(pid, Signals.SIGQUIT);
            throw new InvalidOperationException($"daemon did not become ready: {answer}");
        }
        string pidFile = Path.Combine(dir, DataDirLockFile.FileName);
        long t2 = Stopwatch.GetTimestamp();
        ProcessControl.Signal(pid, Signals.SIGINT);
        while (File.Exists(pidFile))
            Thread.SpinWait(50);
        long t3 = Stopwatch.GetTimestamp();
        while (ProcessSpawner.TryReap(pid) is null)
            Thread.Yield();
        return (Stats.Ms(t1 - t0), Stats.Ms(t3 - t2));
    }

    /// <summary><see cref="TimeProcess"/> with stdout to /dev/null (pg_ctl's chatter).</summary>
    private static double TimeQuiet(string exe, params string[] args)
    {
        using var devNull = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Write);
        return Time(exe, args, (int)devNull.DangerousGetHandle());
    }

    private static double TimeProcess(string exe, params string[] args) => Time(exe, args, null);

    private static double Time(string exe, string[] args, int? stdout)
    {
        long t0 = Stopwatch.GetTimestamp();
        int pid = ProcessSpawner.Spawn(new SpawnOptions(exe, args, StdinPath: "/dev/null", StdoutFd: stdout));
        ChildExit? exit;
        while ((exit = ProcessSpawner.TryReap(pid)) is null)
            Thread.Sleep(0);
        long t1 = Stopwatch.GetTimestamp();
        if (exit.Value.ExitCode != 0)
            throw new InvalidOperationException($"{exe} {string.Join(' ', args)}: {exit.Value.Describe("process")}");
        return Stats.Ms(t1 - t0);
    }


    private static void Cli(params string[] args) => TimeProcess(BenchPaths.Postmaster, args);

    /// <summary>The daemon alone (issue 2's figures): no demonstration workers, no pool. Backends: suite "backends".</summary>
    private static void WithoutBackends(string dir)
    {
        string conf = Path.Combine(dir, "postmaster.conf");
        File.WriteAllLines(conf, File.ReadAllLines(conf).Where(l => !l.StartsWith("worker.")).Append("backend_pool_size = 0"));
    }
}

/// <summary>Suite "startup": issue 2's start/stop figures.</summary>
public sealed class StartupSuite : IBenchSuite
{
    public string Name => "startup";

    public string Description => "start --detach -w, exec → ready, stop -m fast, with 128MB and 1GB of shared memory";

    public void Run() => StartupBench.Run();
}

/// <summary>Suite "startup-quick": only the daemon's exec → ready median (while tuning start-up).</summary>
public sealed class StartupQuickSuite : IBenchSuite
{
    public string Name => "startup-quick";

    public string Description => "daemon exec → ready only";

    public bool InDefaultRun => false;

    public void Run() => StartupBench.Quick();
}
