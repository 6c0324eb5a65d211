using System.Diagnostics;

namespace Postmaster.Bench;

/// <summary>Small helpers: medians and timing.</summary>
public static class Stats
{
    public static double Median(IReadOnlyList<double> xs)
    {
        var s = xs.OrderBy(x => x).ToArray();
        return s.Length == 0 ? double.NaN : s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    public static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}
