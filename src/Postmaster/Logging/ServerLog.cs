using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting.Json;

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

    private readonly Logger _logger;
    private readonly AppendFileSink? _file;
    private volatile int _minimum;

    public ServerLog(LogSinks sinks, string? jsonDirectory, Severity minimum, string backendType = "postmaster")
    {
        _minimum = (int)minimum;
        var config = new LoggerConfiguration()
            .MinimumLevel.Verbose()
            .Enrich.WithProperty(PidProperty, Environment.ProcessId)
            .Enrich.WithProperty("BackendType", backendType);
        if (sinks.HasFlag(LogSinks.Stderr))
            config = config.WriteTo.Console(new PgTextFormatter(), standardErrorFromLevel: LogEventLevel.Verbose);
        if (sinks.HasFlag(LogSinks.Json) && jsonDirectory is not null)
        {
            // Mode 0600 in a 0700 directory and O_APPEND, whatever the umask (see AppendFileSink).
            _file = new AppendFileSink(new JsonFormatter(renderMessage: true), jsonDirectory, backendType + "-");
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

    public void Write(Severity severity, string message, string? detail = null, string? hint = null, Exception? exception = null)
    {
        if (!IsEnabled(severity))
            return;
        var logger = _logger.ForContext(SeverityProperty, severity.Label());
        if (detail is not null)
            logger = logger.ForContext(DetailProperty, detail);
        if (hint is not null)
            logger = logger.ForContext(HintProperty, hint);
        // The message is data, not a template: escape braces so Serilog prints it verbatim.
        logger.Write(severity.ToSerilog(), exception, message.Replace("{", "{{").Replace("}", "}}"));
    }

    public void Log(string message, string? detail = null, string? hint = null) => Write(Severity.Log, message, detail, hint);

    public void Debug1(string message) => Write(Severity.Debug1, message);

    public void Debug2(string message) => Write(Severity.Debug2, message);

    public void Warning(string message, string? detail = null, string? hint = null) => Write(Severity.Warning, message, detail, hint);

    public void Fatal(string message, string? detail = null, string? hint = null) => Write(Severity.Fatal, message, detail, hint);

    public void Dispose()
    {
        _logger.Dispose();
        _file?.Dispose();
    }
}
