using System.Globalization;
using System.Text;

namespace Postmaster.Bench;

/// <summary>A markdown table of (ours vs baseline) results. The ratio is always a cost ratio, ours ÷ baseline in time
/// per operation (for throughput rows: baseline ops/s ÷ ours), so 1.0 is parity and lower is better.</summary>
public sealed class BenchTable
{
    private readonly List<string[]> _rows = new();

    /// <summary>A time-per-operation row (lower is better).</summary>
    public void AddTime(string what, string baseline, double baselineValue, double oursValue, string unit, string target) =>
        _rows.Add([what, $"{baseline}: {Format(baselineValue)} {unit}", $"{Format(oursValue)} {unit}",
            $"{Format(oursValue / baselineValue)}×", target]);

    /// <summary>A throughput row (higher is better).</summary>
    public void AddThroughput(string what, string baseline, double baselineOpsPerSecond, double oursOpsPerSecond, string target) =>
        _rows.Add([what, $"{baseline}: {FormatRate(baselineOpsPerSecond)}", FormatRate(oursOpsPerSecond),
            $"{Format(baselineOpsPerSecond / oursOpsPerSecond)}× ({Format(oursOpsPerSecond / baselineOpsPerSecond)}× the throughput)", target]);

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine("| Benchmark | Baseline | Ours | Ratio (ours ÷ baseline, cost) | Target |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var row in _rows)
            sb.AppendLine($"| {string.Join(" | ", row)} |");
        return sb.ToString();
    }

    private static string Format(double value) =>
        value.ToString(value >= 100 ? "0" : value >= 10 ? "0.0" : "0.00", CultureInfo.InvariantCulture);

    private static string FormatRate(double opsPerSecond) =>
        opsPerSecond >= 1e6 ? $"{Format(opsPerSecond / 1e6)} M ops/s" : $"{Format(opsPerSecond / 1e3)} k ops/s";
}
