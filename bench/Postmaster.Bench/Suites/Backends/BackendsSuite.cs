using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Postmaster.Bench.Suites.Backends;

/// <summary>
/// Suite "backends": worker backends and crash recovery, each against a baseline measured in the same run.
/// (1) spawn latency, request → the worker's Run method, cold and from the pool, through the CLI and through an
/// in-process request client; (2) bringing up 1, 20 and 200 workers; (3) PSS of idle backends vs bare .NET
/// processes, 1/20/200 side by side; (4) the postmaster's CPU while 1/20/200 backends idle; (5) crash recovery:
/// a killed idle worker reconciled, and a killed lock holder forcing a full restart, with 4 and 20 workers.
/// The full run ("backends") writes docs/benchmarks-backends.md; "backends-spawn" etc. run one part and only print.
/// Every server is started through the real CLI with its own data directory, stopped and deleted afterwards, and
/// a leak check (/dev/shm, System V segments, processes) closes the run.
/// </summary>
public sealed partial class BackendsSuite : IBenchSuite
{
    [Flags]
    public enum Parts
    {
        Spawn = 1,
        Throughput = 2,
        Resources = 4,
        Crash = 8,
        Knobs = 16,
        All = Spawn | Throughput | Resources | Crash | Knobs,
    }

    /// <summary>Quiet time after the backends reached the wanted state and before anything is timed: a new .NET
    /// process keeps working for a while after its Main started (tiered compilation's 100 ms delay, page faults).</summary>
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(300);

    /// <summary>In docs/benchmarks-backends.md, everything from this line on is written by hand and kept.</summary>
    private const string KeptSectionMarker = "<!-- Written by hand below this line; the suite keeps it when it rewrites the tables above. -->";

    private readonly Parts _parts;

    public BackendsSuite(string name, Parts parts)
    {
        Name = name;
        _parts = parts;
    }

    public string Name { get; }

    public string Description => _parts switch
    {
        Parts.All => "worker backends: spawn latency and throughput, memory, supervisor CPU, crash recovery, diagnostics (writes docs/benchmarks-backends.md)",
        Parts.Spawn => "backends: spawn latency only",
        Parts.Throughput => "backends: bring-up of 1/20/200 workers only",
        Parts.Resources => "backends: PSS and supervisor CPU only",
        Parts.Crash => "backends: crash recovery only",
        Parts.Knobs => "backends: diagnostics only (pool refill, reflection cost, runtime knobs)",
        _ => "backends",
    };

    public bool InDefaultRun => _parts == Parts.All;

    public void Run()
    {
        var report = new StringBuilder();
        string loadBefore = LoadAverage();
        try
        {
            if (_parts.HasFlag(Parts.Spawn))
                SpawnLatency(report);
            if (_parts.HasFlag(Parts.Throughput))
                Throughput(report);
            if (_parts.HasFlag(Parts.Resources))
                Resources(report);
            if (_parts.HasFlag(Parts.Crash))
                Crash(report);
            if (_parts.HasFlag(Parts.Knobs))
                Knobs(report);
        }
        finally
        {
            BenchProcess.DeleteScratch();
        }
        var left = LeakCheck.Leftovers();
        report.AppendLine(left.Count == 0
            ? "Leak check after the run: no /dev/shm name of this run's instances, no System V segment created by one of its " +
              "postmasters, no process running an executable from out/."
            : $"Leak check after the run found: {string.Join("; ", left)}.");
        string loadAfter = LoadAverage();
        var doc = new StringBuilder();
        doc.AppendLine("# Benchmarks: worker backends and crash recovery");
        doc.AppendLine();
        doc.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd} with `./run.sh bench {Name}` on {Environment.ProcessorCount} cores " +
                       $"(shared with another engineer's builds: load average {loadBefore} before the run, {loadAfter} after), " +
                       $"{RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}. " +
                       "Every server was started through the real CLI (`postmaster start --detach`) with its own data directory, " +
                       "and stopped and deleted afterwards. Times are medians after discarded warm-up runs; the number of runs is " +
                       "given per table.");
        doc.AppendLine();
        doc.Append(report);
        Console.WriteLine();
        Console.Write(doc);
        if (_parts == Parts.All)
        {
            var path = Path.Combine(RepositoryRoot(), "docs", "benchmarks-backends.md");
            // Hand-written analysis below the marker survives a re-run; everything above it is regenerated.
            string old = File.Exists(path) ? File.ReadAllText(path) : "";
            int kept = old.IndexOf(KeptSectionMarker, StringComparison.Ordinal);
            doc.AppendLine(kept >= 0 ? old[kept..].TrimEnd() : KeptSectionMarker);
            File.WriteAllText(path, doc.ToString());
            Console.WriteLine($"\nwritten to {path}");
        }
    }

    /// <summary>Pause between two polls where the bench waits for a state to change in milliseconds.</summary>
    private const int PollMicroseconds = 50;

    private static int s_pollWord;

    /// <summary>Sleeps about <see cref="PollMicroseconds"/> (a futex wait that nobody wakes, with a deadline):
    /// short enough for millisecond figures, and the postmaster gets the CPU meanwhile.</summary>
    private static void PollPause() =>
        Postmaster.Shmem.Locks.Futex.Wait(ref s_pollWord, 0, Stopwatch.GetTimestamp() + PollMicroseconds * Stopwatch.Frequency / 1_000_000);

    private static string LoadAverage() =>
        string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));

    private static double Ms(long ticks) => Stats.Ms(ticks);

    private static double Median(IEnumerable<double> xs) => Stats.Median(xs.ToList());

    private static string Int(int n) => n.ToString(CultureInfo.InvariantCulture);

    /// <summary>Settings every server of this suite shares; callers add to them.</summary>
    private static Dictionary<string, string> BaseSettings(int maxBackends, int poolSize) => new()
    {
        ["max_backends"] = Int(maxBackends),
        ["backend_pool_size"] = Int(poolSize),
    };

    private static string RepositoryRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Postmaster.sln")))
                    return d.FullName;
        throw new InvalidOperationException("cannot find the repository root (Postmaster.sln)");
    }
}
