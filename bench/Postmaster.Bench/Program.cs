using Postmaster.Bench;
using Postmaster.Bench.Suites;
using Postmaster.Bench.Suites.Backends;

// Postmaster.Bench [suite...]: runs the named suites (all when none is named); each prints a markdown table of
// results against baselines measured in the same run. Register a suite with one line below.
// Hidden: Postmaster.Bench --child <suite> <args...> runs a suite's helper process (see BenchChild).
IBenchSuite[] suites =
[
    new LocksSuite(),
    new StartupSuite(),
    new StartupQuickSuite(),
    new DsmBenchSuite(),
    new RegistrySuite(),
    new BackendsSuite("backends", BackendsSuite.Parts.All),
    new BackendsSuite("backends-spawn", BackendsSuite.Parts.Spawn),
    new BackendsSuite("backends-bring-up", BackendsSuite.Parts.Throughput),
    new BackendsSuite("backends-resources", BackendsSuite.Parts.Resources),
    new BackendsSuite("backends-crash", BackendsSuite.Parts.Crash),
    new BackendsSuite("backends-knobs", BackendsSuite.Parts.Knobs),
    new ConnectionsSuite(),
    new MetricsSuite(),
    new LoggingSuite(),
    new AreaSuite(),
    new QueueSuite(),
];

if (args.Length >= 2 && args[0] == BenchChild.ChildFlag)
{
    var owner = suites.FirstOrDefault(s => s.Name == args[1]);
    if (owner is null)
    {
        Console.Error.WriteLine($"no suite named {args[1]}");
        return 2;
    }
    return owner.RunChild(args[2..]);
}

var unknown = args.Where(a => suites.All(s => s.Name != a)).ToList();
if (unknown.Count > 0)
{
    Console.Error.WriteLine($"unknown suite(s): {string.Join(", ", unknown)}; available: {string.Join(", ", suites.Select(s => s.Name))}");
    return 2;
}
try
{
    foreach (var suite in suites.Where(s => args.Length == 0 ? s.InDefaultRun : args.Contains(s.Name)))
    {
        Console.WriteLine($"## {suite.Name}: {suite.Description}");
        Console.WriteLine();
        suite.Run();
        Console.WriteLine();
    }
    return 0;
}
catch (Exception e)
{
    Console.Error.WriteLine($"benchmark failed: {e}");
    return 1;
}
