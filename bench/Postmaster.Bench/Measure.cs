using System.Diagnostics;

namespace Postmaster.Bench;

/// <summary>Timing helpers: one warm-up run (which also lets tiered compilation finish), then the median of
/// <see cref="Runs"/> measured runs.</summary>
public static class Measure
{
    public const int Runs = 7;

    /// <summary>Median of <see cref="Runs"/> results of <paramref name="run"/>, after one discarded warm-up run.</summary>
    public static double Median(Func<double> run)
    {
        run();
        var results = new double[Runs];
        for (int i = 0; i < Runs; i++)
            results[i] = run();
        Array.Sort(results);
        return results[Runs / 2];
    }

    /// <summary>
    /// Nanoseconds per operation of each of <paramref name="loops"/>, as medians. The loops take turns run by run
    /// (A, B, C, A, B, C...), so a change in the machine's load (it is shared) hits all of them alike; each loop is
    /// called with chunks of <paramref name="chunk"/> until <paramref name="operations"/> have run, so that the loop
    /// method itself gets tiered up during the warm-up round.
    /// </summary>
    public static double[] NanosecondsPerOp(int operations, params Action<int>[] loops)
    {
        const int Chunk = 100_000;
        var results = loops.Select(_ => new List<double>()).ToArray();
        for (int run = 0; run <= Runs; run++) // run 0 is the warm-up
        {
            for (int i = 0; i < loops.Length; i++)
            {
                var sw = Stopwatch.StartNew();
                for (int done = 0; done < operations; done += Chunk)
                    loops[i](Chunk);
                if (run > 0)
                    results[i].Add(sw.Elapsed.TotalNanoseconds / operations);
            }
        }
        return results.Select(r => r.Order().ElementAt(r.Count / 2)).ToArray();
    }
}
