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

    private static double TimeProcess(string exe, params string[] args)
    {
        long t0 = Stopwatch.GetTimestamp();
        int pid = ProcessSpawner.Spawn(new SpawnOptions(exe, args, StdinPath: "/dev/null"));
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
