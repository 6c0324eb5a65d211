namespace Postmaster.Logging;

/// <summary>The log's timestamp text, <c>yyyy-MM-dd HH:mm:ss.fff UTC</c> (PostgreSQL's <c>%m</c>), formatted by hand
/// with the last result kept per thread: under a storm most records share their millisecond with the one before.</summary>
internal static class LogTime
{
    [ThreadStatic]
    private static long t_lastMs;

    [ThreadStatic]
    private static string? t_last;

    public static string Format(DateTimeOffset time)
    {
        var utc = time.UtcDateTime;
        long ms = utc.Ticks / TimeSpan.TicksPerMillisecond;
        if (t_last is { } last && t_lastMs == ms)
            return last;
        string text = string.Create(27, utc, static (span, u) =>
        {
            Digits(span[..4], u.Year);
            span[4] = '-';
            Digits(span.Slice(5, 2), u.Month);
            span[7] = '-';
            Digits(span.Slice(8, 2), u.Day);
            span[10] = ' ';
            Digits(span.Slice(11, 2), u.Hour);
            span[13] = ':';
            Digits(span.Slice(14, 2), u.Minute);
            span[16] = ':';
            Digits(span.Slice(17, 2), u.Second);
            span[19] = '.';
            Digits(span.Slice(20, 3), u.Millisecond);
            " UTC".CopyTo(span[23..]);
        });
        t_lastMs = ms;
        t_last = text;
        return text;
    }

    private static void Digits(Span<char> span, int value)
    {
        for (int i = span.Length - 1; i >= 0; i--)
        {
            span[i] = (char)('0' + value % 10);
            value /= 10;
        }
    }
}
