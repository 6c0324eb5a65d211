using System.Diagnostics;
using System.Text;
using Postmaster.Shmem.Backends;

namespace Postmaster.Bench.Suites.Backends;

public sealed partial class BackendsSuite
{
    private static readonly (int Count, int Runs)[] s_bringUp = [(1, 10), (20, 10), (200, 3)];

    /// <summary>
    /// Time to bring up N workers, from the first request to the last worker's Run (the latest stamp), with the pool
    /// off: N dynamic spawns in a row through the in-process client (each waits for its answer, not for the worker),
    /// and N static workers added by a reload (worker.stamp.count = N, then SIGHUP). Baseline: N bare .NET processes
    /// started back to back by the bench, to the last one's Main.
    /// </summary>
    private static void Throughput(StringBuilder report)
    {
        var rows = new List<string[]>();
        using var stamps = new Stamps("bring-up");
        foreach (var (n, runs) in s_bringUp)
        {
            Console.WriteLine($"bring-up: {n} processes");
            var bare = new List<double>();
            var dynamic = new List<double>();
            var reload = new List<double>();
            for (int i = 0; i <= runs; i++)
            {
                stamps.Clear();
                long t0 = Stopwatch.GetTimestamp();
                var pids = Enumerable.Range(0, n).Select(_ => BenchProcess.Start(BenchPaths.Hello, "stamp", stamps.Dir)).ToList();
                long last = stamps.WaitFor(n).Max();
                pids.ForEach(pid => BenchProcess.WaitForExit(pid));
                if (i > 0)
                    bare.Add(Ms(last - t0));
                Thread.Sleep(Settle);
            }
            var settings = BaseSettings(maxBackends: n + 8, poolSize: 0);
            var withWorkers = new Dictionary<string, string>(settings)
            {
                ["worker.stamp.entry"] = BenchServer.Quote(BenchServer.StampEntry),
                ["worker.stamp.count"] = Int(n),
                ["worker.stamp.argument"] = BenchServer.Quote($"stay:{stamps.Dir}"),
            };
            using var server = BenchServer.Start($"bring-up-{n}", settings);
            for (int i = 0; i <= runs; i++) // run 0 is the warm-up
            {
                server.WaitForSteadyState(0, 0);
                Thread.Sleep(Settle);
                stamps.Clear();
                long t0 = Stopwatch.GetTimestamp();
                for (int k = 0; k < n; k++)
                {
                    var r = server.Request(WorkerRequestKind.Spawn, "stamp", BenchServer.StampEntry, $"stay:{stamps.Dir}");
                    if (!r.Ok)
                        throw new InvalidOperationException($"spawn refused: {r.Error}");
                }
                long last = stamps.WaitFor(n).Max();
                if (i > 0)
                    dynamic.Add(Ms(last - t0));
                server.WaitForSteadyState(n, 0);
                server.Request(WorkerRequestKind.Terminate, "", "", "", target: "stamp");
                server.WaitForSteadyState(0, 0);
                Thread.Sleep(Settle);

                stamps.Clear();
                t0 = server.Reload(withWorkers);
                last = stamps.WaitFor(n).Max();
                if (i > 0)
                    reload.Add(Ms(last - t0));
                server.WaitForSteadyState(n, 0);
                server.Reload(settings);
            }
            server.WaitForSteadyState(0, 0);
            double b = Median(bare), d = Median(dynamic), s = Median(reload);
            rows.Add([Int(n), Int(runs), Markdown.Ms(b), Markdown.Ms(d), Markdown.Ratio(d, b), Markdown.Ms(s), Markdown.Ratio(s, b),
                Markdown.Ms(d / n), Markdown.Num(n / (d / 1000)) + " /s"]);
        }
        report.AppendLine("## 2. Bringing up 1, 20 and 200 workers");
        report.AppendLine();
        report.AppendLine("From the first request to the last worker's `Run` (the latest stamp of N stamp workers, which then stay " +
                          "idle), `backend_pool_size = 0`, `max_backends = N + 8`. Dynamic: N spawn requests in a row through the " +
                          "in-process client, each waiting for the postmaster's answer (the pid), not for the worker. Reload: " +
                          "`worker.stamp.count = N` written to postmaster.conf, then SIGHUP (timed from the signal). Baseline: " +
                          "N bare .NET processes (`hello stamp`) started back to back by the bench, to the last one's `Main`. " +
                          "Medians of the given number of runs after one warm-up run; 2 cores, so N processes starting at once " +
                          "share them.");
        report.AppendLine();
        report.Append(Markdown.Table(
            ["N", "runs", "baseline: N bare .NET starts", "dynamic spawns", "÷ baseline", "static, by reload", "÷ baseline",
                "per worker (dynamic)", "workers/s (dynamic)"], rows));
        report.AppendLine();
    }
}
