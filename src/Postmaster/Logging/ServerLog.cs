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
    private readonly List<IBatchingSink> _batching = new(2);
    private readonly StderrSink? _stderr;
    private volatile int _minimum;

    public ServerLog(LogSinks sinks, string? jsonDirectory, Severity minimum, string backendType = "postmaster", LogRotation? rotation = null)
    {
        _minimum = (int)minimum;
        var config = new LoggerConfiguration()
            .MinimumLevel.Verbose()
            .Enrich.WithProperty(PidProperty, Environment.ProcessId)
            .Enrich.WithProperty(BackendTypeProperty, backendType);
        if (sinks.HasFlag(LogSinks.Stderr))
        {
            _stderr = new StderrSink(new PgTextFormatter());
            _batching.Add(_stderr);
            config = config.WriteTo.Sink(_stderr);
        }
        if (sinks.HasFlag(LogSinks.Json) && jsonDirectory is not null)
        {
            // Mode 0600 in a 0700 directory and O_APPEND, whatever the umask (see AppendFileSink).
            _file = new AppendFileSink(new JsonLogFormatter(), jsonDirectory, backendType + "-", rotation);
            _batching.Add(_file);
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
        if (!BackendRecord.TryRead(pid, json, out var record))
        {
            WriteRaw(System.Text.Encoding.UTF8.GetString(json));
            return;
        }
        // Straight to the destinations (the collector's hot path): the text from the record's fields, a log event only
        // for the JSON file. The output is what the logger would write for the record's event.
        _stderr?.Emit(record);
        _file?.Emit(record.ToLogEvent());
    }

    /// <summary>Holds what is written until the returned scope ends, then writes it to each destination at once (the
    /// collector's records of one pipe read). Events of other threads meanwhile are held too, in order.</summary>
    public BatchScope Batch()
    {
        foreach (var sink in _batching)
            sink.BeginBatch();
        return new BatchScope(this);
    }

    public readonly struct BatchScope(ServerLog log) : IDisposable
    {
        public void Dispose()
        {
            foreach (var sink in log._batching)
                sink.EndBatch();
        }
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
