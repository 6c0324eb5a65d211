using Serilog.Events;

namespace Postmaster.Logging;

/// <summary>PostgreSQL's message severities, in server-log order: LOG ranks above ERROR, so LOG lines (lifecycle
/// events) appear under the default threshold while debug chatter does not. Also the type of the
/// <c>log_min_messages</c> setting (the configuration parses the lower-case names in this order).</summary>
public enum Severity
{
    Debug5,
    Debug4,
    Debug3,
    Debug2,
    Debug1,
    Info,
    Notice,
    Warning,
    Error,
    Log,
    Fatal,
    Panic,
}

public static class SeverityText
{
    /// <summary>The word printed before the message ("LOG", "DEBUG1", ...).</summary>
    public static string Label(this Severity s) => s switch
    {
        Severity.Debug5 => "DEBUG5",
        Severity.Debug4 => "DEBUG4",
        Severity.Debug3 => "DEBUG3",
        Severity.Debug2 => "DEBUG2",
        Severity.Debug1 => "DEBUG1",
        Severity.Info => "INFO",
        Severity.Notice => "NOTICE",
        Severity.Warning => "WARNING",
        Severity.Error => "ERROR",
        Severity.Log => "LOG",
        Severity.Fatal => "FATAL",
        _ => "PANIC",
    };

    private static readonly Severity[] s_all = Enum.GetValues<Severity>();

    /// <summary>The severity whose <see cref="Label"/> is <paramref name="label"/>.</summary>
    public static bool TryParseLabel(string label, out Severity severity)
    {
        foreach (Severity s in s_all)
        {
            if (s.Label() == label)
            {
                severity = s;
                return true;
            }
        }
        severity = Severity.Log;
        return false;
    }

    /// <summary>The Serilog level of a severity (filtering is done on <see cref="Severity"/>).</summary>
    public static LogEventLevel ToSerilog(this Severity s) => s switch
    {
        <= Severity.Debug2 => LogEventLevel.Verbose,
        Severity.Debug1 => LogEventLevel.Debug,
        Severity.Info or Severity.Notice or Severity.Log => LogEventLevel.Information,
        Severity.Warning => LogEventLevel.Warning,
        Severity.Error => LogEventLevel.Error,
        _ => LogEventLevel.Fatal,
    };
}
