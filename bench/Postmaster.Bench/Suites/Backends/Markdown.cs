using System.Globalization;
using System.Text;

namespace Postmaster.Bench.Suites.Backends;

/// <summary>Markdown tables and number formatting for the backends report.</summary>
internal static class Markdown
{
    public static string Table(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"| {string.Join(" | ", header)} |");
        sb.AppendLine($"|{string.Concat(header.Select(_ => "---|"))}");
        foreach (var row in rows)
            sb.AppendLine($"| {string.Join(" | ", row)} |");
        return sb.ToString();
    }

    /// <summary>Three significant figures or so: 0.123, 1.23, 12.3, 123.</summary>
    public static string Num(double value) => double.IsNaN(value) ? "—" :
        value.ToString(Math.Abs(value) >= 100 ? "0" : Math.Abs(value) >= 10 ? "0.0" : Math.Abs(value) >= 1 ? "0.00" : "0.000",
            CultureInfo.InvariantCulture);

    public static string Ms(double ms) => $"{Num(ms)} ms";

    public static string Ratio(double ours, double baseline) => $"{Num(ours / baseline)}×";

    public static string MiB(long kb) => $"{(kb / 1024.0).ToString("0.0", CultureInfo.InvariantCulture)} MiB";

    public static string Verdict(bool met, string target) => $"{(met ? "met" : "MISSED")} ({target})";
}
