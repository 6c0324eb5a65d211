using System.Diagnostics;
using System.Text;

namespace Postmaster.Bench.Suites.Backends;

public sealed partial class BackendsSuite
{
    private static readonly int[] s_sideBySide = [1, 20, 200];
    private const double PssTarget = 1.25;

    /// <summary>How long processes idle before their memory is read (start-up work, tiered compilation, GC done).</summary>
    private static readonly TimeSpan MemorySettle = TimeSpan.FromSeconds(3);

    /// <summary>The window over which CPU time is sampled.</summary>
    private static readonly TimeSpan CpuWindow = TimeSpan.FromSeconds(10);

    /// <summary>One N: the idle backends and, right after, N bare processes under the same postmaster.</summary>
    private readonly record struct Sample(int Count, MemoryUse Backend, MemoryUse Bare, MemoryUse Postmaster, int BackendThreads,
        int BareThreads, Cpu WithBackends, Cpu WithoutBackends, int WithJit, Dictionary<string, long>? BackendByMapping = null,
        Dictionary<string, long>? BareByMapping = null);

    /// <summary>CPU over <see cref="CpuWindow"/> as % of one core: the postmaster by utime + stime and by schedstat, and
    /// the N other processes (backends or bare processes) together by utime + stime.</summary>
    private readonly record struct Cpu(double PmStat, double PmSched, double Others);

    /// <summary>
    /// Memory: PSS (and USS) of each idle backend with 1, 20 and 200 side by side (built-in idle worker, static
    /// count = N, pool off); then, under the same postmaster (its backends stopped by a reload), N bare .NET
    /// processes (<c>hello wait</c>) side by side, so that both sets share the framework's file pages with the same
    /// other processes, a few seconds apart. CPU: the postmaster's utime + stime (and schedstat) over
    /// <see cref="CpuWindow"/> with the N idle backends, and with none (while the bare processes idle).
    /// </summary>
    private static void Resources(StringBuilder report)
    {
        var samples = s_sideBySide.Select(n => IdleSample(n, null, withBaseline: true)).ToList();

        var memRows = samples.Select(s => new[]
        {
            Int(s.Count), Markdown.MiB(s.Bare.Pss), Markdown.MiB(s.Backend.Pss), Markdown.Ratio(s.Backend.Pss, s.Bare.Pss),
            Markdown.MiB(s.Bare.Private), Markdown.MiB(s.Backend.Private), Markdown.Ratio(s.Backend.Private, s.Bare.Private),
            Markdown.Verdict(s.Backend.Pss <= PssTarget * s.Bare.Pss, $"≤ {PssTarget}×"),
        });
        var first = samples[0];
        report.AppendLine("## 3. Memory of an idle backend");
        report.AppendLine();
        report.AppendLine("Per-process PSS and USS (Private_Clean + Private_Dirty) from `/proc/PID/smaps_rollup`, medians over the N " +
                          $"processes, read after {MemorySettle.TotalSeconds:0} s of idling. Backends: built-in `idle` worker, " +
                          "`worker.idle.count = N`, `backend_pool_size = 0`. Baseline: right after, the same postmaster with its " +
                          "workers removed by a reload, and N bare .NET processes (`out/bench-hello/hello wait`: ReadyToRun, " +
                          "`Thread.Sleep(Infinite)` in Main) side by side. PSS splits each shared page among every process mapping " +
                          "it, including other people's .NET processes on this shared machine, so the N = 1 PSS figures move with " +
                          "their number; USS does not. One measurement per row.");
        report.AppendLine();
        report.Append(Markdown.Table(["N side by side", "bare .NET PSS", "idle backend PSS", "ratio", "bare .NET USS",
            "idle backend USS", "ratio", "target (PSS)"], memRows));
        report.AppendLine();
        report.AppendLine($"Breakdown with N = 1 (PSS anon / file / shmem): backend {Markdown.MiB(first.Backend.PssAnon)} / " +
                          $"{Markdown.MiB(first.Backend.PssFile)} / {Markdown.MiB(first.Backend.PssShmem)}, bare .NET " +
                          $"{Markdown.MiB(first.Bare.PssAnon)} / {Markdown.MiB(first.Bare.PssFile)} / {Markdown.MiB(first.Bare.PssShmem)}; " +
                          $"RSS {Markdown.MiB(first.Backend.Rss)} vs {Markdown.MiB(first.Bare.Rss)}. Threads: idle backend " +
                          $"{first.BackendThreads}, bare .NET {first.BareThreads}. The postmaster itself: PSS " +
                          $"{string.Join(", ", samples.Select(s => $"{Markdown.MiB(s.Postmaster.Pss)} (N = {s.Count})"))}. " +
                          "Idle backends with the JIT (`libclrjit.so`) mapped: " +
                          $"{string.Join(", ", samples.Select(s => $"{s.WithJit} of {s.Count}"))}.");
        report.AppendLine();
        var at20 = samples.First(s => s.Count == 20);
        var a = at20.BackendByMapping!;
        var b = at20.BareByMapping!;
        var byDifference = a.Keys.Union(b.Keys).Select(k => (Name: k, Backend: a.GetValueOrDefault(k), Bare: b.GetValueOrDefault(k)))
            .OrderByDescending(x => x.Backend - x.Bare).ToList();
        var shown = byDifference.Where(x => Math.Abs(x.Backend - x.Bare) >= 16).ToList();
        long rest = byDifference.Except(shown).Sum(x => x.Backend - x.Bare);
        report.AppendLine("Where the difference is: USS by mapping of one idle backend and one bare .NET process (N = 20), in kB, " +
                          "rows that differ by 16 kB or more. `memfd:doublemapper` is the runtime's W^X double-mapped executable " +
                          "memory (precode and stubs for every method called, JIT-compiled code); `[anon]` holds the GC heap, loader " +
                          "heaps (type data) and thread stacks; `[heap]` is malloc (the JIT's and the runtime's native data).");
        report.AppendLine();
        report.Append(Markdown.Table(["mapping", "idle backend", "bare .NET", "difference"],
            shown.Select(x => new[] { x.Name, Int((int)x.Backend), Int((int)x.Bare), $"{x.Backend - x.Bare:+#;-#;0}" })
                .Append(["everything else", "", "", $"{rest:+#;-#;0}"])
                .Append(["total", Int((int)a.Values.Sum()), Int((int)b.Values.Sum()), $"{a.Values.Sum() - b.Values.Sum():+#;-#;0}"])));
        report.AppendLine();

        string P(double x) => $"{Markdown.Num(x)} %";
        var cpuRows = samples.Select(s => new[]
        {
            Int(s.Count), P(s.WithoutBackends.PmStat), P(s.WithBackends.PmStat), P(s.WithoutBackends.PmSched), P(s.WithBackends.PmSched),
            P(s.WithBackends.Others), P(s.WithoutBackends.Others),
        });
        report.AppendLine("## 4. Supervisor CPU while backends idle");
        report.AppendLine();
        report.AppendLine($"The postmaster's CPU over {CpuWindow.TotalSeconds:0} s as % of one core with N idle backends (the servers of " +
                          "section 3, right after the memory reading), and as baseline the same postmaster with its workers removed " +
                          "(while the N bare processes of section 3 idle). utime + stime from `/proc/PID/stat` (10 ms ticks, so " +
                          $"0.1 % resolution over {CpuWindow.TotalSeconds:0} s) and the per-thread `/proc/PID/task/*/schedstat` (ns; " +
                          "threads that end within the window are not counted). Last columns: the N backends together, and the N " +
                          "bare .NET processes together, same window length (utime + stime).");
        report.AppendLine();
        report.Append(Markdown.Table(["N", "baseline: no backends (stat)", "postmaster with N idle backends (stat)",
            "baseline (schedstat)", "with N backends (schedstat)", "N backends together", "N bare .NET together"], cpuRows));
        report.AppendLine();
        GlobalizationCost(report);
    }

    /// <summary>What ICU globalization costs a backend: one server with four static workers side by side — idle and
    /// a worker that formats with the de-DE culture, each invariant and with globalization = icu — PSS and the CPU
    /// each process used to start (utime + stime after settling).</summary>
    private static void GlobalizationCost(StringBuilder report)
    {
        Console.WriteLine("globalization: invariant vs icu");
        string culture = BenchServer.Quote(Path.Combine(BenchPaths.Out, "testchild", "TestChild.dll") + ":Postmaster.TestChild.Workers.CultureWorker");
        var settings = new Dictionary<string, string>(BaseSettings(maxBackends: 12, poolSize: 0))
        {
            ["worker.idle_inv.entry"] = "'idle'",
            ["worker.idle_icu.entry"] = "'idle'",
            ["worker.idle_icu.globalization"] = "icu",
            ["worker.culture_inv.entry"] = culture,
            ["worker.culture_inv.argument"] = "'wait'",
            ["worker.culture_icu.entry"] = culture,
            ["worker.culture_icu.argument"] = "'wait'",
            ["worker.culture_icu.globalization"] = "icu",
        };
        using var server = BenchServer.Start("glob", settings);
        var backends = server.WaitForSteadyState(4, 0);
        Thread.Sleep(MemorySettle);
        var rows = new List<IReadOnlyList<string>>();
        foreach (var (worker, label) in new[] { ("idle", "idle"), ("culture", "uses de-DE (CultureWorker)") })
        {
            int inv = backends.Single(b => b.Name == worker + "_inv").Pid;
            int icu = backends.Single(b => b.Name == worker + "_icu").Pid;
            var mInv = ProcStats.Memory(inv);
            var mIcu = ProcStats.Memory(icu);
            double cInv = 1000.0 * ProcStats.CpuTicks(inv) / ProcStats.ClockTicksPerSecond;
            double cIcu = 1000.0 * ProcStats.CpuTicks(icu) / ProcStats.ClockTicksPerSecond;
            rows.Add([label, Markdown.MiB(mInv.Pss), Markdown.MiB(mIcu.Pss), Markdown.Ratio(mIcu.Pss, mInv.Pss),
                Markdown.Ms(cInv), Markdown.Ms(cIcu)]);
        }
        report.AppendLine("### Globalization: invariant (default) vs `globalization = icu`");
        report.AppendLine();
        report.AppendLine("One server, four static workers side by side (one process each); PSS from smaps_rollup and the CPU each " +
                          "process had used after settling (utime + stime, 10 ms ticks), which is its start-up cost.");
        report.AppendLine();
        report.Append(Markdown.Table(["worker", "PSS invariant", "PSS icu", "ratio", "CPU invariant", "CPU icu"], rows));
        report.AppendLine();
    }

    /// <summary>One server with <paramref name="n"/> idle backends: memory, then CPU over the window; with
    /// <paramref name="withBaseline"/>, then the same for N bare .NET processes under the same postmaster.</summary>
    private static Sample IdleSample(int n, IReadOnlyDictionary<string, string>? environment, bool measureCpu = true, bool withBaseline = false)
    {
        Console.WriteLine($"idle backends: {n}");
        var settings = BaseSettings(maxBackends: n + 8, poolSize: 0);
        var withWorkers = new Dictionary<string, string>(settings)
        {
            ["worker.idle.entry"] = "'idle'",
            ["worker.idle.count"] = Int(n),
        };
        using var server = BenchServer.Start($"idle-{n}", withWorkers, environment);
        var pids = server.WaitForSteadyState(n, 0).Select(b => b.Pid).ToList();
        Thread.Sleep(MemorySettle);
        var backend = MedianUse(pids.Select(ProcStats.Memory).ToList());
        var pm = ProcStats.Memory(server.Pid);
        int threads = ProcStats.Threads(pids[0]);
        var backendByMapping = ProcStats.PrivateByMapping(pids[0]);
        int withJit = pids.Count(ProcStats.MapsJit);
        var withBackends = measureCpu ? CpuOver(server.Pid, pids) : default;
        if (!withBaseline)
            return new Sample(n, backend, default, pm, threads, 0, withBackends, default, withJit);

        server.Reload(settings);
        server.WaitForSteadyState(0, 0);
        var bare = Enumerable.Range(0, n).Select(_ => BenchProcess.Start(BenchPaths.Hello, "wait")).ToList();
        try
        {
            Thread.Sleep(MemorySettle);
            var bareUse = MedianUse(bare.Select(ProcStats.Memory).ToList());
            int bareThreads = ProcStats.Threads(bare[0]);
            var bareByMapping = ProcStats.PrivateByMapping(bare[0]);
            var withoutBackends = measureCpu ? CpuOver(server.Pid, bare) : default;
            return new Sample(n, backend, bareUse, pm, threads, bareThreads, withBackends, withoutBackends, withJit, backendByMapping, bareByMapping);
        }
        finally
        {
            BenchProcess.KillAll(bare);
        }
    }

    private static Cpu CpuOver(int pm, List<int> others)
    {
        long ticks0 = ProcStats.CpuTicks(pm);
        var sched0 = ProcStats.ThreadCpuNanoseconds(pm);
        long others0 = others.Sum(ProcStats.CpuTicks);
        var sw = Stopwatch.StartNew();
        Thread.Sleep(CpuWindow);
        long ticks1 = ProcStats.CpuTicks(pm);
        var sched1 = ProcStats.ThreadCpuNanoseconds(pm);
        long others1 = others.Sum(ProcStats.CpuTicks);
        double seconds = sw.Elapsed.TotalSeconds;
        double Percent(long ticks) => 100.0 * ticks / ProcStats.ClockTicksPerSecond / seconds;
        return new Cpu(Percent(ticks1 - ticks0), 100.0 * ProcStats.CpuNanosecondsBetween(sched0, sched1) / 1e9 / seconds,
            Percent(others1 - others0));
    }

    /// <summary>Field-wise medians (each field on its own).</summary>
    private static MemoryUse MedianUse(List<MemoryUse> xs)
    {
        long M(Func<MemoryUse, long> f) => (long)Median(xs.Select(x => (double)f(x)));
        return new MemoryUse(M(x => x.Rss), M(x => x.Pss), M(x => x.PssAnon), M(x => x.PssFile), M(x => x.PssShmem), M(x => x.Private));
    }
}
