using System.Globalization;
using System.Text;

namespace Postmaster.Testing;

/// <summary>Writes <c>postmaster.conf</c> lines (postgresql.conf syntax): every value single-quoted, so any text is
/// one value; <c>'</c>, <c>\</c> and control characters are escaped as the product's parser reads them.</summary>
internal static class ConfigText
{
    public static string Line(string name, string value) => $"{name} = {Quote(value)}";

    public static string Quote(string value)
    {
        var text = new StringBuilder(value.Length + 2).Append('\'');
        foreach (char c in value)
            text.Append(c switch
            {
                '\'' => "''",
                '\\' => @"\\",
                '\n' => @"\n",
                '\r' => @"\r",
                '\t' => @"\t",
                _ => c.ToString(),
            });
        return text.Append('\'').ToString();
    }

    public static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>A duration in the largest unit that states it exactly (ms, else us).</summary>
    public static string Time(TimeSpan value)
    {
        if (value < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(value), value, "a duration in postmaster.conf cannot be negative");
        return value.Ticks % TimeSpan.TicksPerMillisecond == 0
            ? Number((long)value.TotalMilliseconds) + "ms"
            : Number(value.Ticks / TimeSpan.TicksPerMicrosecond) + "us";
    }
}
