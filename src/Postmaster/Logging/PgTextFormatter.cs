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
    public void Format(LogEvent logEvent, TextWriter output)
    {
        if (logEvent.Properties.ContainsKey(ServerLog.RawProperty))
        {
            output.Write(logEvent.MessageTemplate.Text);
            output.Write('\n');
            return;
        }
        string context = Scalar(logEvent, ServerLog.ContextProperty);
        if (logEvent.Exception is { } ex)
            context = context.Length > 0 ? context + "\n" + ex : ex.ToString();
        string detail = Scalar(logEvent, ServerLog.DetailProperty), hint = Scalar(logEvent, ServerLog.HintProperty);
        Write(output, LogTime.Format(logEvent.Timestamp), Scalar(logEvent, ServerLog.PidProperty),
            Scalar(logEvent, ServerLog.SeverityProperty), logEvent.MessageTemplate.Text,
            detail.Length > 0 ? detail : null, hint.Length > 0 ? hint : null, context.Length > 0 ? context : null);
    }

    /// <summary>A backend's record from the pipe, formatted as its log event would be (the collector's text path: no
    /// log event is built for it).</summary>
    internal static void Format(in RecordFields r, TextWriter output) =>
        Write(output, r.TimestampText ?? LogTime.Format(r.Time), r.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture),
            r.Severity.Label(), r.Message, r.Detail, r.Hint, r.Context);

    private static void Write(TextWriter output, string timestamp, string pid, string label, string message, string? detail,
        string? hint, string? context)
    {
        string prefix = timestamp + " [" + pid + "] ";
        Line(output, prefix, label, message);
        if (detail is not null)
            Line(output, prefix, "DETAIL", detail);
        if (hint is not null)
            Line(output, prefix, "HINT", hint);
        if (context is null)
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
