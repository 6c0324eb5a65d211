using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Parsing;

namespace Postmaster.Logging;

/// <summary>Where log lines go (log_destination).</summary>
[Flags]
public enum LogSinks
{
    Stderr = 1,
    Json = 2,
}

/// <summary>
/// The daemon's log: PostgreSQL-like lines on stderr and/or JSON lines in log_directory, through Serilog (the file
/// sink is <see cref="AppendFileSink"/>: files 0600, directory 0700, O_APPEND).
/// Filtering is on PostgreSQL's severity order (<see cref="MinimumSeverity"/>, changeable on reload), so messages
/// below the threshold cost one comparison. Messages are plain strings with the object names already quoted
/// (PostgreSQL style); DETAIL and HINT travel as properties.
/// </summary>
public sealed class ServerLog : IDisposable
{
    public const string SeverityProperty = "Severity";
    public const string PidProperty = "ProcessId";
    public const string DetailProperty = "Detail";
    public const string HintProperty = "Hint";
    public const string ContextProperty = "Context";
    public const string BackendTypeProperty = "BackendType";
    public const string WorkerProperty = "Worker";
    public const string SlotProperty = "Slot";

    /// <summary>Set on plain text that a process wrote to the log pipe itself (not a record).</summary>
    public const string RawProperty = "Raw";

    private readonly Logger _logger;
    private readonly AppendFileSink? _file;
    private volatile int _minimum;

    public ServerLog(LogSinks sinks, string? jsonDirectory, Severity minimum, string backendType = "postmaster", LogRotation? rotation = null)
    {
        _minimum = (int)minimum;
        var config = new LoggerConfiguration()
            .MinimumLevel.Verbose()
            .Enrich.WithProperty(PidProperty, Environment.ProcessId)
            .Enrich.WithProperty(BackendTypeProperty, backendType);
        if (sinks.HasFlag(LogSinks.Stderr))
            config = config.WriteTo.Console(new PgTextFormatter(), standardErrorFromLevel: LogEventLevel.Verbose);
        if (sinks.HasFlag(LogSinks.Json) && jsonDirectory is not null)
        {
            // Mode 0600 in a 0700 directory and O_APPEND, whatever the umask (see AppendFileSink).
            _file = new AppendFileSink(new JsonLogFormatter(), jsonDirectory, backendType + "-", rotation);
            config = config.WriteTo.Sink(_file);
        }
        _logger = config.CreateLogger();
    }

    public Severity MinimumSeverity
    {
        get => (Severity)_minimum;
        set => _minimum = (int)value;
    }

    public bool IsEnabled(Severity severity) => (int)severity >= _minimum;

    /// <summary>The JSON files' rotation rules (a reload sets them); nothing without a JSON destination.</summary>
    public LogRotation? Rotation
    {
        get => _file?.Rotation;
        set
        {
            if (_file is not null && value is not null)
                _file.Rotation = value;
        }
    }

    public void Write(Severity severity, string message, string? detail = null, string? hint = null, Exception? exception = null)
    {
        if (!IsEnabled(severity))
            return;
        var props = new List<LogEventProperty>(3) { new(SeverityProperty, new ScalarValue(severity.Label())) };
        if (detail is not null)
            props.Add(new LogEventProperty(DetailProperty, new ScalarValue(detail)));
        if (hint is not null)
            props.Add(new LogEventProperty(HintProperty, new ScalarValue(hint)));
        _logger.Write(new LogEvent(DateTimeOffset.UtcNow, severity.ToSerilog(), exception, Literal(message), props));
    }

    /// <summary>A backend's record from the log pipe (its JSON, see docs/logging.md), written to every destination
    /// as the postmaster's own are. A record that is not a JSON object, or whose fields have the wrong types, is
    /// written as the text it is (never an exception: whatever a process writes cannot stop the collector).</summary>
    public void WriteRecord(int pid, byte[] json)
    {
        LogEvent? e = null;
        try
        {
            e = ParseRecord(pid, json);
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or InvalidOperationException or ArgumentException
                                       or FormatException)
        {
            // not one of our records (or a damaged one): below, as text
        }
        if (e is null)
        {
            WriteRaw(System.Text.Encoding.UTF8.GetString(json));
            return;
        }
        _logger.Write(e);
    }

    private static LogEvent? ParseRecord(int pid, byte[] json)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        var r = doc.RootElement;
        if (r.ValueKind != System.Text.Json.JsonValueKind.Object)
            return null;
        string Str(string name) => r.TryGetProperty(name, out var v) && v.ValueKind == System.Text.Json.JsonValueKind.String ? v.GetString() ?? "" : "";
        int? Int(string name) => r.TryGetProperty(name, out var v) && v.ValueKind == System.Text.Json.JsonValueKind.Number
                                  && v.TryGetInt32(out int n) ? n : null;
        var timestamp = DateTimeOffset.TryParseExact(Str("timestamp"), "yyyy-MM-dd HH:mm:ss.fff 'UTC'",
            System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var t) ? t : DateTimeOffset.UtcNow;
        string label = Str("error_severity");
        var severity = SeverityText.TryParseLabel(label, out var sv) ? sv : Severity.Log;
        var props = new List<LogEventProperty>
        {
            new(SeverityProperty, new ScalarValue(severity.Label())),
            new(PidProperty, new ScalarValue(Int("pid") ?? pid)),
            new(BackendTypeProperty, new ScalarValue(Str("backend_type") is { Length: > 0 } bt ? bt : "backend")),
        };
        foreach (var (key, property) in new[] { ("worker", WorkerProperty), ("detail", DetailProperty), ("hint", HintProperty), ("context", ContextProperty) })
            if (Str(key) is { Length: > 0 } value)
                props.Add(new LogEventProperty(property, new ScalarValue(value)));
        if (Int("slot") is int slot)
            props.Add(new LogEventProperty(SlotProperty, new ScalarValue(slot)));
        return new LogEvent(timestamp, severity.ToSerilog(), null, Literal(Str("message")), props);
    }

    /// <summary>Plain text a process wrote to the log pipe itself (a library, the runtime): written as it came.</summary>
    public void WriteRaw(string text) =>
        _logger.Write(new LogEvent(DateTimeOffset.UtcNow, LogEventLevel.Information, null, Literal(text),
            [new LogEventProperty(RawProperty, new ScalarValue(true))]));

    private static MessageTemplate Literal(string text) => new([new TextToken(text)]);

    public void Log(string message, string? detail = null, string? hint = null) => Write(Severity.Log, message, detail, hint);

    public void Debug1(string message) => Write(Severity.Debug1, message);

    public void Debug2(string message) => Write(Severity.Debug2, message);

    public void Warning(string message, string? detail = null, string? hint = null) => Write(Severity.Warning, message, detail, hint);

    public void Fatal(string message, string? detail = null, string? hint = null) => Write(Severity.Fatal, message, detail, hint);

    /// <summary>Closes the open JSON file: the next record opens the file its path names now (log rotation).</summary>
    public void ReopenFiles() => _file?.Reopen();

    public void Dispose()
    {
        _logger.Dispose();
        _file?.Dispose();
    }
}
