using Serilog.Events;
using Serilog.Formatting;

namespace Postmaster.Logging;

/// <summary>
/// Formats events as PostgreSQL's default log_line_prefix '%m [%p] ' does:
/// <c>2026-11-20 12:00:00.123 UTC [4127] LOG:  message</c>, then one line each for DETAIL and HINT.
/// </summary>
public sealed class PgTextFormatter : ITextFormatter
{
    public void Format(LogEvent logEvent, TextWriter output)
    {
        string prefix = logEvent.Timestamp.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.fff") + " UTC [" +
                        Scalar(logEvent, ServerLog.PidProperty) + "] ";
        output.Write(prefix);
        output.Write(Scalar(logEvent, ServerLog.SeverityProperty));
        output.Write(":  ");
        output.Write(logEvent.RenderMessage());
        output.Write('\n');
        foreach (var (property, label) in new[] { (ServerLog.DetailProperty, "DETAIL"), (ServerLog.HintProperty, "HINT") })
        {
            var text = Scalar(logEvent, property);
            if (text.Length == 0)
                continue;
            output.Write(prefix);
            output.Write(label);
            output.Write(":  ");
            output.Write(text);
            output.Write('\n');
        }
        if (logEvent.Exception is { } ex)
        {
            output.Write(prefix);
            output.Write("DETAIL:  ");
            output.Write(ex.ToString().Replace("\n", "\n\t"));
            output.Write('\n');
        }
    }

    private static string Scalar(LogEvent e, string name) =>
        e.Properties.TryGetValue(name, out var v) && v is ScalarValue { Value: { } o } ? o.ToString() ?? "" : "";
}
