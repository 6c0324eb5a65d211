using System.Diagnostics;
using System.Text;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Os;

namespace Postmaster.Bench.Suites.Backends;

public sealed partial class BackendsSuite
{
    private const int SpawnRuns = 15;
    private const int SpawnWarmUp = 3;
    private const double ColdTargetMs = 40;
    private const double PoolTargetMs = 1;
    private const double PostgresConnectionMs = 2.8;

    /// <summary>
    /// Request → the stamp worker's Run, which records the clock first thing (the worker was resolved, its assembly
    /// loaded and Run JIT-compiled by then; the backend attached and claimed its slot before any of that). The bench
    /// takes its timestamp just before it starts <c>postmaster spawn</c>, or just before Submit in the in-process
    /// client. Cold: backend_pool_size = 0; pool: backend_pool_size = 1, with the parked member settled.
    /// </summary>
    private static void SpawnLatency(StringBuilder report)
    {
        Console.WriteLine("spawn latency: baselines");
        using var stamps = new Stamps("spawn");
        var helloExit = new List<double>();
        var helloMain = new List<double>();
        for (int i = 0; i < SpawnRuns + SpawnWarmUp; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            int pid = BenchProcess.Start(BenchPaths.Hello);
            while (ProcessSpawner.TryReap(pid) is null)
                PollPause();
            long t1 = Stopwatch.GetTimestamp();
            stamps.Clear();
            long t2 = Stopwatch.GetTimestamp();
            pid = BenchProcess.Start(BenchPaths.Hello, "stamp", stamps.Dir);
            long main = stamps.WaitFor(1)[0];
            BenchProcess.WaitForExit(pid);
            if (i < SpawnWarmUp)
                continue;
            helloExit.Add(Ms(t1 - t0));
            helloMain.Add(Ms(main - t2));
        }
        double exitMs = Median(helloExit), mainMs = Median(helloMain);

        var results = new Dictionary<(int Pool, bool Cli), (double Run, double Answer)>();
        var builtin = new Dictionary<int, double>();
        foreach (int pool in new[] { 0, 1 })
        {
            Console.WriteLine($"spawn latency: backend_pool_size = {pool}");
            var series = SpawnSeries($"spawn-pool{pool}", BaseSettings(maxBackends: 8, poolSize: pool), null, stamps, withCli: true);
            results[(pool, true)] = series.ByPath[true];
            results[(pool, false)] = series.ByPath[false];
            builtin[pool] = series.BuiltinDone;
        }

        var asyncRun = new Dictionary<int, double>();
        foreach (int pool in new[] { 0, 1 })
        {
            Console.WriteLine($"spawn latency: async worker, backend_pool_size = {pool}");
            var series = SpawnSeries($"spawn-async-pool{pool}", BaseSettings(maxBackends: 8, poolSize: pool), null, stamps,
                withCli: false, entry: BenchServer.AsyncStampEntry);
            asyncRun[pool] = series.ByPath[false].Run;
        }

        var rows = new List<string[]>
        {
            Row("request → worker's Run, in-process client (Submit + doorbell/SIGUSR1 + futex wait)", false, r => r.Run),
            Row("request → postmaster's answer (pid), in-process client", false, r => r.Answer),
            new[]
            {
                "async worker (`IAsyncBackgroundWorker`, same work): request → `RunAsync`'s first line, in-process client",
                Markdown.Ms(asyncRun[0]), Markdown.Ratio(asyncRun[0], mainMs), Markdown.Ms(asyncRun[1]), Markdown.Ratio(asyncRun[1], PostgresConnectionMs),
            },
            new[]
            {
                "built-in `exit 0` worker: request → ran and released its slot (upper bound of request → Run), in-process client",
                Markdown.Ms(builtin[0]), Markdown.Ratio(builtin[0], mainMs), Markdown.Ms(builtin[1]), Markdown.Ratio(builtin[1], PostgresConnectionMs),
            },
            Row("request → worker's Run, CLI `postmaster spawn`", true, r => r.Run),
            Row("CLI `postmaster spawn` start → exit", true, r => r.Answer),
        };
        string[] Row(string what, bool cli, Func<(double Run, double Answer), double> pick)
        {
            double cold = pick(results[(0, cli)]), pooled = pick(results[(1, cli)]);
            return [what, Markdown.Ms(cold), Markdown.Ratio(cold, mainMs), Markdown.Ms(pooled), Markdown.Ratio(pooled, PostgresConnectionMs)];
        }
        double coldDirect = results[(0, false)].Run, poolDirect = results[(1, false)].Run;
        report.AppendLine("## 1. Spawn latency");
        report.AppendLine();
        report.AppendLine($"Request submitted → the worker's `Run` method starts, medians of {SpawnRuns} runs after {SpawnWarmUp} warm-up runs. " +
                          "The worker is a bench-only user worker (`tests/TestChild/Workers/StampWorker.cs`, loaded from " +
                          "`out/testchild/TestChild.dll`) whose `Run` reads `Stopwatch.GetTimestamp()` (CLOCK_MONOTONIC, the same " +
                          "clock in every process) first thing and leaves it in a file; the bench reads the clock just before it " +
                          "submits the request (in-process client) or starts the CLI. By then the backend has attached the main " +
                          "segment, claimed its slot, loaded the worker's assembly and JIT-compiled `Run`. Cold: `backend_pool_size = 0`; " +
                          "pool: `backend_pool_size = 1` with the parked member settled for 300 ms before each request. " +
                          "CLI and in-process requests alternate run by run.");
        report.AppendLine();
        report.AppendLine($"Baselines (same run, {SpawnRuns} runs): bare .NET process (`out/bench-hello/hello`, ReadyToRun) exec → `Main` " +
                          $"**{Markdown.Ms(mainMs)}**, exec → exit {Markdown.Ms(exitMs)}; PostgreSQL's connection (fork + " +
                          $"authentication + backend start), quoted, ~{Markdown.Ms(PostgresConnectionMs)}.");
        report.AppendLine();
        report.Append(Markdown.Table(
            ["path", "cold", "cold ÷ bare .NET exec → Main", "from the pool", "pool ÷ PostgreSQL connection (2.8 ms)"], rows));
        report.AppendLine();
        report.AppendLine($"Targets: cold < {ColdTargetMs} ms: {Markdown.Verdict(coldDirect < ColdTargetMs, $"{Markdown.Ms(coldDirect)} in-process")}; " +
                          $"pool < {PoolTargetMs} ms: {Markdown.Verdict(poolDirect < PoolTargetMs, $"{Markdown.Ms(poolDirect)} in-process")}.");
        report.AppendLine();
    }

    /// <summary>Spawn latency medians with one server: request → Run and request → answer, through the CLI (when
    /// <paramref name="withCli"/>) and the in-process client, and request → a built-in worker done (in-process),
    /// all alternating.</summary>
    private static SpawnResult SpawnSeries(string label, Dictionary<string, string> settings,
        IReadOnlyDictionary<string, string>? environment, Stamps stamps, bool withCli, int runs = SpawnRuns, string? entry = null)
    {
        entry ??= BenchServer.StampEntry;
        int pool = int.Parse(settings["backend_pool_size"], System.Globalization.CultureInfo.InvariantCulture);
        using var server = BenchServer.Start(label, settings, environment);
        var run = new Dictionary<bool, List<double>> { [true] = new(), [false] = new() };
        var answer = new Dictionary<bool, List<double>> { [true] = new(), [false] = new() };
        var builtin = new List<double>();
        string argument = $"exit:{stamps.Dir}";
        bool[] paths = withCli ? [true, false] : [false];
        for (int i = 0; i < runs + SpawnWarmUp; i++)
        {
            foreach (bool cli in paths) // interleaved, so that drift in the machine's load hits both
            {
                server.WaitForSteadyState(running: 0, parked: pool);
                Thread.Sleep(Settle);
                stamps.Clear();
                long t0 = Stopwatch.GetTimestamp();
                if (cli)
                {
                    BenchProcess.RunCli("spawn", "-D", server.Dir, "--worker", entry, "--argument", argument,
                        "--name", "stamp");
                }
                else
                {
                    var r = server.Request(WorkerRequestKind.Spawn, "stamp", entry, argument);
                    if (!r.Ok)
                        throw new InvalidOperationException($"spawn refused: {r.Error}");
                }
                long t1 = Stopwatch.GetTimestamp();
                long started = stamps.WaitFor(1)[0];
                if (i < SpawnWarmUp)
                    continue;
                run[cli].Add(Ms(started - t0));
                answer[cli].Add(Ms(t1 - t0));
            }
            var parked = server.WaitForSteadyState(running: 0, parked: pool);
            Thread.Sleep(Settle);
            double done = BuiltinExitDone(server, parked.FirstOrDefault());
            if (i >= SpawnWarmUp)
                builtin.Add(done);
        }
        return new SpawnResult(paths.ToDictionary(cli => cli, cli => (Median(run[cli]), Median(answer[cli]))), Median(builtin));
    }

    private sealed record SpawnResult(Dictionary<bool, (double Run, double Answer)> ByPath, double BuiltinDone);

    /// <summary>
    /// Request → the built-in "exit" worker (argument 0) has run and released its slot (Active → Assigned, the last
    /// step of its exit path): an upper bound of request → Run for a built-in worker, which needs no assembly load
    /// or reflection. The bench polls the slot in shared memory every 50 µs: from the request
    /// on for a parked pool member (its slot is known), from the answer on for a cold start (which takes far longer
    /// than the answer). If the bench is not scheduled while the slot is in that state, it sees the slot only once
    /// the postmaster has reaped the process, so the figure can only err on the high side.
    /// </summary>
    private static double BuiltinExitDone(BenchServer server, BackendSlotInfo parked)
    {
        var slots = server.Shmem.Slots;
        long t0 = Stopwatch.GetTimestamp();
        if (parked.Pooled)
        {
            int? index = server.Shmem.Requests.Post(WorkerRequestKind.Spawn, "exit", "exit", "0", "", server.Pid);
            while (true)
            {
                var s = slots.Read(parked.Slot);
                if (s.Generation != parked.Generation && (s.State != BackendSlotState.Active || s.Pooled))
                    break;
                Timeout(t0, s);
                PollPause();
            }
            long t1 = Stopwatch.GetTimestamp();
            var r = server.Shmem.Requests.WaitForResult(index ?? throw new InvalidOperationException("request queue full"), BenchServer.WaitLimit);
            if (r is not { Ok: true })
                throw new InvalidOperationException($"spawn of the exit worker failed: {r?.Error}");
            return Ms(t1 - t0);
        }
        var answer = server.Request(WorkerRequestKind.Spawn, "exit", "exit", "0");
        if (!answer.Ok)
            throw new InvalidOperationException($"spawn refused: {answer.Error}");
        while (true)
        {
            // Assigned with pid 0: not started yet; Active: running; Assigned with its pid: exit path done (MarkInactive
            // keeps the pid); Unused or another generation: already reaped.
            var s = slots.Read(answer.Slot);
            if (s.Generation != answer.Generation || s.State == BackendSlotState.Unused || (s.State == BackendSlotState.Assigned && s.Pid != 0))
                break;
            Timeout(t0, s);
            PollPause();
        }
        return Ms(Stopwatch.GetTimestamp() - t0);
    }

    private static void Timeout(long t0, BackendSlotInfo slot)
    {
        if (Ms(Stopwatch.GetTimestamp() - t0) > BenchServer.WaitLimit.TotalMilliseconds)
            throw new TimeoutException($"the exit worker did not finish: slot {slot.Slot} {slot.State} generation {slot.Generation} pid {slot.Pid} pooled {slot.Pooled}");
    }
}
