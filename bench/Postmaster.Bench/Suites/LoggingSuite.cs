using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Postmaster.Bench.Suites.Backends;
using Postmaster.Shmem.Os;

namespace Postmaster.Bench.Suites;

/// <summary>
/// Suite "logging": the logging collector. (1) Throughput: 20 backends each log 5,000 lines of 200 bytes as fast as
/// they can; lines per second from the first line to the last, as the log file's timestamps say, against this process
/// writing the same number of lines straight to a file with one write(2) each. (2) Backend start latency (the
/// instance's <c>postmaster_backend_start_seconds</c>, mean) of 40 backends started together, 20 of them logging
/// 1,000 lines a second each, against 40 quiet ones, and against the same 20 writing the same records at the same rate
/// to /dev/null (the control: the same work in the backends, none for the collector). (3) Request → Run from the pool
/// while 20 backends log so, against the same control. The postmaster's CPU per line collected is reported with (1).
/// </summary>
public sealed partial class LoggingSuite : IBenchSuite
{
    private const int Writers = 20;
    private const int LinesEach = 5_000;
    private const int LineBytes = 200;

    /// <summary>Messages a second per backend in the paced storms: 20 × 1,000 = 20 k lines/s, about two thirds of what
    /// the collector takes here.</summary>
    private const int PacedRate = 1000;

    public string Name => "logging";

    public string Description => "log collector throughput from 20 busy backends, and spawn latency under a log storm";

    private static string Chatty => Path.Combine(BenchPaths.Out, "testchild", "TestChild.dll") + ":Postmaster.TestChild.Workers.ChattyWorker";

    public void Run()
    {
        var table = new BenchTable();
        MeasureThroughput(table);
        MeasureSpawnUnderStorm(table);
        MeasurePoolSpawnUnderStorm(table);
        Console.Write(table.ToMarkdown());
    }

    private static void MeasureThroughput(BenchTable table)
    {
        using var server = BenchServer.Start("log-storm", new Dictionary<string, string>
        {
            ["max_backends"] = "40",
            ["backend_pool_size"] = "0",
            ["worker.c.entry"] = BenchServer.Quote(Chatty),
            ["worker.c.argument"] = $"'{LinesEach}:{LineBytes}'",
            ["worker.c.count"] = Writers.ToString(CultureInfo.InvariantCulture),
        });
        var sw = Stopwatch.StartNew();
        while (Count(server.LogPath, "LOG:  chatty done") < Writers)
        {
            if (sw.Elapsed > BenchServer.WaitLimit)
                throw new TimeoutException("the chatty workers did not finish");
            Thread.Sleep(100);
        }
        double cpuMs = CpuMs(server.Pid); // the postmaster's CPU: the collector's, nearly all (an idle one: ~10 ms)
        var lines = File.ReadAllLines(server.LogPath);
        var times = lines.Where(l => ChattyLine().IsMatch(l)).Select(Stamp).ToList();
        int total = times.Count;
        if (total != Writers * LinesEach)
            throw new InvalidOperationException($"{total} chatty lines in the log, expected {Writers * LinesEach}");
        double seconds = Math.Max(0.001, (times.Max() - times.Min()).TotalSeconds);
        double ours = total / seconds;

        string path = Path.Combine(Path.GetTempPath(), $"pmbench-{Environment.ProcessId}-direct.log");
        byte[] line = Encoding.UTF8.GetBytes("2026-12-02 19:22:56.183 UTC [12345] LOG:  chatty 1/5000 " + new string('x', LineBytes - 17) + "\n");
        double direct;
        using (var file = AppendOnlyFile.Open(path))
        {
            long t = Stopwatch.GetTimestamp();
            for (int i = 0; i < total; i++)
                file.Write(line);
            direct = total / Stopwatch.GetElapsedTime(t).TotalSeconds;
        }
        File.Delete(path);
        table.AddThroughput($"{Writers} backends logging {LineBytes}-byte lines through the collector", "one process, write(2) per line to a file",
            direct, ours, "report");
        table.AddTime("the postmaster's CPU per line collected (user + system)", "write(2) per line to a file", 1e6 / direct,
            cpuMs * 1000 / total, "µs", "report");
        Console.WriteLine($"({total} lines in {seconds:0.00} s through the collector)");
    }

    private static void MeasureSpawnUnderStorm(BenchTable table)
    {
        double quiet = MeanStart("log-quiet", new Dictionary<string, string>
        {
            ["max_backends"] = "50",
            ["backend_pool_size"] = "0",
            ["worker.i.entry"] = "'idle'",
            ["worker.i.count"] = "40",
        }, 40);
        // The storm and its control, interleaved three times (the spread between runs here is wider than the effect
        // looked for): the medians, and every ratio.
        // Both storms paced to the same rate, below what the collector can take, so the control's writers do not run
        // faster (and burn more CPU) than the collector lets the real ones.
        string paced = $"'-1:{LineBytes}:pipe:{PacedRate}'", pacedNull = $"'-1:{LineBytes}:null:{PacedRate}'";
        var storms = new List<double>();
        var controls = new List<double>();
        for (int round = 0; round < 3; round++)
        {
            storms.Add(MeanStart("log-loud", new Dictionary<string, string>
            {
                ["max_backends"] = "50",
                ["backend_pool_size"] = "0",
                ["worker.c.entry"] = BenchServer.Quote(Chatty),
                ["worker.c.argument"] = paced,
                ["worker.c.count"] = "20",
                ["worker.i.entry"] = "'idle'",
                ["worker.i.count"] = "20",
            }, 40));
            // The control: the same 20 backends build and frame the same records, and write them to /dev/null instead
            // of the log pipe: the same work in the backends, none for the collector.
            controls.Add(MeanStart("log-null", new Dictionary<string, string>
            {
                ["max_backends"] = "50",
                ["backend_pool_size"] = "0",
                ["worker.c.entry"] = BenchServer.Quote(Chatty),
                ["worker.c.argument"] = pacedNull,
                ["worker.c.count"] = "20",
                ["worker.i.entry"] = "'idle'",
                ["worker.i.count"] = "20",
            }, 40));
        }
        double storm = Median(storms), control = Median(controls);
        table.AddTime($"backend start latency (mean of 40), 20 of them logging {PacedRate * 20 / 1000} k lines/s", "40 quiet backends", quiet, storm, "ms", "report (the storm's CPU)");
        table.AddTime("the collector's effect: the same, against the 20 writing the same records to /dev/null (medians of 3)", "20 backends logging to /dev/null", control, storm, "ms", "no measurable effect");
        Console.WriteLine("(storm ÷ control per round: " + string.Join(", ", storms.Zip(controls, (a, b) => (a / b).ToString("0.00", CultureInfo.InvariantCulture) + "×")) +
                          "; storms " + string.Join(", ", storms.Select(x => x.ToString("0", CultureInfo.InvariantCulture))) +
                          " ms, controls " + string.Join(", ", controls.Select(x => x.ToString("0", CultureInfo.InvariantCulture))) + " ms)");
    }

    /// <summary>Request → a stamp worker's Run from a parked pool member (the in-process request client of
    /// <c>backends-spawn</c>), 15 times while 20 backends log 1,000 lines a second each, against the same 20 writing the same
    /// records to /dev/null (no collector work): three servers of each, interleaved; the medians of all requests.</summary>
    private static void MeasurePoolSpawnUnderStorm(BenchTable table)
    {
        var storm = new List<double>();
        var control = new List<double>();
        for (int round = 0; round < 3; round++)
        {
            storm.AddRange(PoolSpawns("pool-loud", new Dictionary<string, string>
            {
                ["max_backends"] = "50",
                ["backend_pool_size"] = "1",
                ["worker.c.entry"] = BenchServer.Quote(Chatty),
                ["worker.c.argument"] = $"'-1:{LineBytes}:pipe:{PacedRate}'", // until stopped: the storm covers every request
                ["worker.c.count"] = Writers.ToString(CultureInfo.InvariantCulture),
            }));
            control.AddRange(PoolSpawns("pool-null", new Dictionary<string, string>
            {
                ["max_backends"] = "50",
                ["backend_pool_size"] = "1",
                ["worker.c.entry"] = BenchServer.Quote(Chatty),
                ["worker.c.argument"] = $"'-1:{LineBytes}:null:{PacedRate}'",
                ["worker.c.count"] = Writers.ToString(CultureInfo.InvariantCulture),
            }));
        }
        table.AddTime($"request → worker's Run from the pool, 20 backends logging {PacedRate * 20 / 1000} k lines/s (median of 45)",
            "the same 20 logging to /dev/null", Median(control), Median(storm), "ms", "no measurable effect");
    }

    private static List<double> PoolSpawns(string label, Dictionary<string, string> settings)
    {
        const int Spawns = 15;
        using var stamps = new Stamps(label);
        using var server = BenchServer.Start(label, settings);
        var times = new List<double>();
        string argument = $"exit:{stamps.Dir}";
        for (int i = 0; i < Spawns + 1; i++)
        {
            server.WaitForSteadyState(running: Writers, parked: 1);
            stamps.Clear();
            long t0 = Stopwatch.GetTimestamp();
            var r = server.Request(Shmem.Backends.WorkerRequestKind.Spawn, "stamp", BenchServer.StampEntry, argument);
            if (!r.Ok)
                throw new InvalidOperationException($"spawn refused: {r.Error}");
            long started = stamps.WaitFor(1)[0];
            if (i > 0) // the first one warms the bench's own request path
                times.Add((started - t0) * 1000.0 / Stopwatch.Frequency);
        }
        AssertNoFailures(server);
        return times;
    }

    /// <summary>A worker that failed would make its row compare less load than it says: the run stops instead.</summary>
    private static void AssertNoFailures(BenchServer server)
    {
        if (File.Exists(server.LogPath) && File.ReadLines(server.LogPath).FirstOrDefault(l => l.Contains(" FATAL:  ", StringComparison.Ordinal)) is { } fatal)
            throw new InvalidOperationException($"a backend failed during the measurement: {fatal}");
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>User + system CPU of process <paramref name="pid"/> so far, in ms (/proc/PID/stat fields 14 and 15).</summary>
    private static double CpuMs(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        double ticks = double.Parse(fields[11], CultureInfo.InvariantCulture) + double.Parse(fields[12], CultureInfo.InvariantCulture);
        return ticks * 1000 / 100; // USER_HZ is 100 on Linux
    }

    /// <summary>The mean backend start latency, in ms, once <paramref name="backends"/> have started.</summary>
    private static double MeanStart(string label, Dictionary<string, string> settings, int backends)
    {
        using var server = BenchServer.Start(label, settings);
        var sw = Stopwatch.StartNew();
        while (true)
        {
            string metrics = BenchProcess.Output(BenchPaths.Postmaster, "metrics", "-D", server.Dir);
            double count = Value(metrics, "postmaster_backend_start_seconds_count");
            if (count >= backends)
            {
                AssertNoFailures(server);
                return Value(metrics, "postmaster_backend_start_seconds_sum") / count * 1000;
            }
            if (sw.Elapsed > BenchServer.WaitLimit)
                throw new TimeoutException($"{backends} backends did not start");
            Thread.Sleep(100);
        }
    }

    private static double Value(string metrics, string name)
    {
        foreach (string l in metrics.Split('\n'))
            if (l.StartsWith(name + " ", StringComparison.Ordinal))
                return double.Parse(l[(name.Length + 1)..], CultureInfo.InvariantCulture);
        return 0;
    }

    private static int Count(string path, string text) =>
        File.Exists(path) ? File.ReadLines(path).Count(l => l.Contains(text, StringComparison.Ordinal)) : 0;

    private static DateTime Stamp(string line) =>
        DateTime.ParseExact(line[..23], "yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture);

    [GeneratedRegex(@"LOG:  chatty \d+/\d+ ")]
    private static partial Regex ChattyLine();
}
