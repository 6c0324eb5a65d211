using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Serilog.Events;
using Serilog.Formatting;

namespace Postmaster.Logging;

/// <summary>
/// The one JSON schema of the instance's log (docs/logging.md), for the postmaster's records and every backend's
/// alike: PostgreSQL's jsonlog keys where they apply (<c>timestamp</c>, <c>pid</c>, <c>backend_type</c>,
/// <c>error_severity</c>, <c>message</c>, <c>detail</c>, <c>hint</c>, <c>context</c>) plus ours (<c>worker</c>,
/// <c>slot</c>). One object per line; absent fields are left out, as jsonlog does.
/// </summary>
public sealed class JsonLogFormatter : ITextFormatter
{
    private static readonly JsonWriterOptions s_options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public void Format(LogEvent logEvent, TextWriter output)
    {
        using var ms = new MemoryStream(256);
        using (var w = new Utf8JsonWriter(ms, s_options))
        {
            w.WriteStartObject();
            w.WriteString("timestamp", LogTime.Format(logEvent.Timestamp));
            if (int.TryParse(PgTextFormatter.Scalar(logEvent, ServerLog.PidProperty), out int pid))
                w.WriteNumber("pid", pid);
            bool raw = logEvent.Properties.ContainsKey(ServerLog.RawProperty);
            w.WriteString("backend_type", raw ? "unknown" : PgTextFormatter.Scalar(logEvent, ServerLog.BackendTypeProperty));
            string worker = PgTextFormatter.Scalar(logEvent, ServerLog.WorkerProperty);
            if (worker.Length > 0)
                w.WriteString("worker", worker);
            if (int.TryParse(PgTextFormatter.Scalar(logEvent, ServerLog.SlotProperty), out int slot))
                w.WriteNumber("slot", slot);
            w.WriteString("error_severity", raw ? "LOG" : PgTextFormatter.Scalar(logEvent, ServerLog.SeverityProperty));
            w.WriteString("message", logEvent.MessageTemplate.Text);
            Optional(w, "detail", PgTextFormatter.Scalar(logEvent, ServerLog.DetailProperty));
            Optional(w, "hint", PgTextFormatter.Scalar(logEvent, ServerLog.HintProperty));
            string context = PgTextFormatter.Scalar(logEvent, ServerLog.ContextProperty);
            if (logEvent.Exception is { } ex)
                context = context.Length > 0 ? context + "\n" + ex : ex.ToString();
            Optional(w, "context", context);
            w.WriteEndObject();
        }
        output.Write(Encoding.UTF8.GetString(ms.GetBuffer(), 0, (int)ms.Length));
        output.Write('\n');
    }

    private static void Optional(Utf8JsonWriter w, string name, string value)
    {
        if (value.Length > 0)
            w.WriteString(name, value);
    }
}
