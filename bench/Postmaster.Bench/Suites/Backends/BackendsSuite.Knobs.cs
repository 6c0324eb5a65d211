using System.Diagnostics;
using System.Text;
using Postmaster.Shmem.Backends;

namespace Postmaster.Bench.Suites.Backends;

public sealed partial class BackendsSuite
{
    private const int KnobRuns = 15;

    /// <summary>Runtime settings tried for the backend, as environment variables given to the CLI (the daemon and
    /// every backend inherit them). Empty: the defaults as shipped.</summary>
    private static readonly (string Label, Dictionary<string, string> Environment)[] s_knobs =
    [
        ("as shipped", new()),
        ("DOTNET_EnableWriteXorExecute=0", new() { ["DOTNET_EnableWriteXorExecute"] = "0" }),
        ("DOTNET_TieredPGO=0", new() { ["DOTNET_TieredPGO"] = "0" }),
        ("DOTNET_TieredCompilation=0", new() { ["DOTNET_TieredCompilation"] = "0" }),
        ("DOTNET_EnableDiagnostics=0", new() { ["DOTNET_EnableDiagnostics"] = "0" }),
        ("MALLOC_ARENA_MAX=1", new() { ["MALLOC_ARENA_MAX"] = "1" }),
        ("DOTNET_GCgen0size=0x40000 (256 kB)", new() { ["DOTNET_GCgen0size"] = "40000" }),
        ("W^X=0 + TieredPGO=0", new() { ["DOTNET_EnableWriteXorExecute"] = "0", ["DOTNET_TieredPGO"] = "0" }),
    ];

    /// <summary>
    /// Diagnostic ("backends-knobs"): where pool latency goes (with and without the pool refill competing for the
    /// CPU: max_backends = 1 leaves no slot for the refill), and cold spawn latency and PSS of idle backends under
    /// runtime knobs. Timings run one server per variant side by side, one request to each in turn, so that drift
    /// in the machine's load hits every variant alike.
    /// </summary>
    private static void Knobs(StringBuilder report)
    {
        using var stamps = new Stamps("knobs");
        Console.WriteLine("pool latency with and without the refill");
        var pool = InterleavedSpawns(
            [("max_backends = 8 (the refill starts at once)", BaseSettings(8, poolSize: 1), null),
             ("max_backends = 1 (no slot for a refill)", BaseSettings(1, poolSize: 1), null),
             ("max_backends = 1, DOTNET_EnableWriteXorExecute=0", BaseSettings(1, poolSize: 1), s_knobs[1].Environment),
             ("max_backends = 1, DOTNET_TieredPGO=0", BaseSettings(1, poolSize: 1), s_knobs[2].Environment)],
            stamps, KnobRuns);
        report.AppendLine("## Diagnostics: pool latency with and without the refill");
        report.AppendLine();
        report.AppendLine($"In-process client, pool of 1, medians of {KnobRuns} runs, the variants' servers side by side and requested in turn.");
        report.AppendLine();
        report.Append(Markdown.Table(["variant", "request → Run", "request → answer"],
            pool.Select(p => new[] { p.Label, Markdown.Ms(p.Run), Markdown.Ms(p.Answer) })));
        report.AppendLine();

        Console.WriteLine("reflection cost in a fresh process");
        List<double[]> Reflect(params string[] extra) => Enumerable.Range(0, KnobRuns + 1).Select(_ => BenchProcess.Output(BenchPaths.Hello,
                ["reflect", Path.Combine(BenchPaths.Out, "testchild", "TestChild.dll"), "Postmaster.TestChild.Workers.NotAWorker", .. extra])
            .Trim().Split(' ').Select(x => double.Parse(x, System.Globalization.CultureInfo.InvariantCulture)).ToArray())
            .Skip(1).ToList();
        var byName = Reflect();
        var byScan = Reflect("scan");
        string[] stepNames = ["AssemblyLoadContext.LoadFromAssemblyPath", "find the type, first call in the process",
            "GetConstructor + Activator.CreateInstance, first", "find + CreateInstance again (warm)"];
        report.AppendLine("## Diagnostics: resolving a worker type in a fresh process");
        report.AppendLine();
        report.AppendLine("What `WorkerResolver` does for a user worker (`ASSEMBLY.dll:Type`), timed step by step in a bare .NET process " +
                          $"(`hello reflect`, ReadyToRun; a type of out/testchild/TestChild.dll, 22 kB), medians of {KnobRuns} fresh processes. " +
                          "Finding the type by name (`Assembly.GetType`) or by walking `Assembly.GetTypes()` for the full name, which is " +
                          "what `WorkerResolver` does for assemblies up to 128 kB. A cold backend pays these first-call prices; a pool " +
                          "member pays them while parked, for the entries it preloads.");
        report.AppendLine();
        report.Append(Markdown.Table(["step", "by name", "by walking the type list"],
            stepNames.Select((name, k) => new[] { name, Markdown.Ms(Median(byName.Select(x => x[k]))), Markdown.Ms(Median(byScan.Select(x => x[k]))) })));
        report.AppendLine();

        Console.WriteLine("cold spawn latency under knobs");
        var cold = InterleavedSpawns(s_knobs.Select(k => (k.Label, BaseSettings(8, poolSize: 0), (IReadOnlyDictionary<string, string>?)k.Environment)).ToList(),
            stamps, KnobRuns);
        var memory = s_knobs.Select(k => IdleSample(20, k.Environment, measureCpu: false)).ToList();
        report.AppendLine("## Diagnostics: runtime knobs for the backend");
        report.AppendLine();
        report.AppendLine($"Cold request → Run (in-process client, medians of {KnobRuns}, servers side by side and requested in turn) and " +
                          "per-backend memory with 20 idle backends (medians over the 20). The knobs are environment variables of the " +
                          "daemon, which its backends inherit.");
        report.AppendLine();
        report.Append(Markdown.Table(["knob", "cold request → Run", "PSS (20 idle)", "USS", "PSS anon", "PSS file", "PSS shmem"],
            s_knobs.Select((k, i) => new[]
            {
                k.Label, Markdown.Ms(cold[i].Run), Markdown.MiB(memory[i].Backend.Pss), Markdown.MiB(memory[i].Backend.Private),
                Markdown.MiB(memory[i].Backend.PssAnon), Markdown.MiB(memory[i].Backend.PssFile), Markdown.MiB(memory[i].Backend.PssShmem),
            })));
        report.AppendLine();
    }

    /// <summary>One server per variant, all running; each round sends one in-process spawn request to each in turn.
    /// Returns per-variant medians of request → Run and request → answer.</summary>
    private static List<(string Label, double Run, double Answer)> InterleavedSpawns(
        IReadOnlyList<(string Label, Dictionary<string, string> Settings, IReadOnlyDictionary<string, string>? Environment)> variants,
        Stamps stamps, int runs)
    {
        var servers = new List<BenchServer>();
        try
        {
            foreach (var (_, settings, env) in variants)
                servers.Add(BenchServer.Start($"variant{servers.Count}", settings, env));
            var run = variants.Select(_ => new List<double>()).ToArray();
            var answer = variants.Select(_ => new List<double>()).ToArray();
            string argument = $"exit:{stamps.Dir}";
            var parked = variants.Select(x => int.Parse(x.Settings["backend_pool_size"], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            for (int i = 0; i < runs + SpawnWarmUp; i++)
            {
                for (int v = 0; v < servers.Count; v++)
                {
                    for (int w = 0; w < servers.Count; w++) // every server quiet, not only this one
                        servers[w].WaitForSteadyState(0, parked[w]);
                    Thread.Sleep(Settle);
                    stamps.Clear();
                    long t0 = Stopwatch.GetTimestamp();
                    var r = servers[v].Request(WorkerRequestKind.Spawn, "stamp", BenchServer.StampEntry, argument);
                    long t1 = Stopwatch.GetTimestamp();
                    if (!r.Ok)
                        throw new InvalidOperationException($"spawn refused: {r.Error}");
                    long started = stamps.WaitFor(1)[0];
                    if (i < SpawnWarmUp)
                        continue;
                    run[v].Add(Ms(started - t0));
                    answer[v].Add(Ms(t1 - t0));
                }
            }
            return variants.Select((x, v) => (x.Label, Median(run[v]), Median(answer[v]))).ToList();
        }
        finally
        {
            foreach (var s in servers)
                s.Dispose();
        }
    }
}
