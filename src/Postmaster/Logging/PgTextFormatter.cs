using Serilog.Events;
using Serilog.Formatting;

namespace Postmaster.Logging;

/// <summary>
/// Formats events as PostgreSQL's default log_line_prefix '%m [%p] ' does:
/// <c>2026-11-20 12:00:00.123 UTC [4127] LOG:  message</c>, then one line each for DETAIL, HINT and every line of
/// CONTEXT. A newline inside a message continues on a new line with the prefix and a tab, so every line of the stream
/// says whose it is. Plain text a process wrote to the log pipe itself is written as it came.
/// </summary>
public sealed class PgTextFormatter : ITextFormatter
{
    private static readonly (string Property, string Label)[] s_extraLines =
        [(ServerLog.DetailProperty, "DETAIL"), (ServerLog.HintProperty, "HINT")];

    public void Format(LogEvent logEvent, TextWriter output)
    {
        if (logEvent.Properties.ContainsKey(ServerLog.RawProperty))
        {
            output.Write(logEvent.MessageTemplate.Text);
            output.Write('\n');
            return;
        }
        string prefix = LogTime.Format(logEvent.Timestamp) + " [" + Scalar(logEvent, ServerLog.PidProperty) + "] ";
        Line(output, prefix, Scalar(logEvent, ServerLog.SeverityProperty), logEvent.MessageTemplate.Text);
        foreach (var (property, label) in s_extraLines)
        {
            var text = Scalar(logEvent, property);
            if (text.Length > 0)
                Line(output, prefix, label, text);
        }
        string context = Scalar(logEvent, ServerLog.ContextProperty);
        if (logEvent.Exception is { } ex)
            context = context.Length > 0 ? context + "\n" + ex : ex.ToString();
        if (context.Length == 0)
            return;
        foreach (string line in context.Split('\n'))
            if (line.Length > 0)
                Line(output, prefix, "CONTEXT", line.TrimEnd('\r'));
    }

    private static void Line(TextWriter output, string prefix, string label, string text)
    {
        output.Write(prefix);
        output.Write(label);
        output.Write(":  ");
        output.Write(text.Contains('\n') ? text.Replace("\r", "").Replace("\n", "\n" + prefix + "\t") : text);
        output.Write('\n');
    }

    internal static string Scalar(LogEvent e, string name) =>
        e.Properties.TryGetValue(name, out var v) && v is ScalarValue { Value: { } o } ? o.ToString() ?? "" : "";
}
