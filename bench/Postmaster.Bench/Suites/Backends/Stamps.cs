using System.Diagnostics;
using System.Globalization;

namespace Postmaster.Bench.Suites.Backends;

/// <summary>
/// A directory where stamp workers (tests/TestChild StampWorker) and <c>hello stamp</c> processes each leave one
/// file, named by pid, holding Stopwatch.GetTimestamp() taken when their code started (CLOCK_MONOTONIC nanoseconds,
/// the same clock in every process). The bench notices the files by polling, so how fast it notices does not
/// enter the figures.
/// </summary>
internal sealed class Stamps : IDisposable
{
    public Stamps(string label)
    {
        Dir = Path.Combine(Path.GetTempPath(), $"pmbench-{Environment.ProcessId}-stamps-{label}");
        if (Directory.Exists(Dir))
            Directory.Delete(Dir, recursive: true);
        Directory.CreateDirectory(Dir);
    }

    public string Dir { get; }

    public void Clear()
    {
        foreach (var f in Directory.EnumerateFiles(Dir))
            File.Delete(f);
    }

    /// <summary>Waits until <paramref name="count"/> stamps are there; returns them (timestamps).</summary>
    public List<long> WaitFor(int count)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var files = Directory.EnumerateFiles(Dir).Where(f => !f.EndsWith(".tmp", StringComparison.Ordinal)).ToList();
            if (files.Count >= count)
                return files.Select(f => long.Parse(File.ReadAllText(f), CultureInfo.InvariantCulture)).ToList();
            if (sw.Elapsed > BenchServer.WaitLimit)
                throw new TimeoutException($"only {files.Count} of {count} stamps arrived in {Dir}");
            Thread.Sleep(1);
        }
    }

    public void Dispose() => Directory.Delete(Dir, recursive: true);
}
