using System.Text;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Text;

namespace Postmaster.Backend;

/// <summary>
/// A backend's log. Under the postmaster (log destination <c>collector</c>) each entry is one JSON record in the
/// schema of docs/logging.md (PostgreSQL's jsonlog keys plus ours), sent over the log pipe that is this process's
/// stderr (<see cref="LogPipe"/>: frames of at most PIPE_BUF bytes, each one atomic write); the postmaster's log
/// collector turns it into the text line and the JSON line of every destination, so every process of the instance
/// ends up in one stream per destination, with no interleaved partial lines, and what was written before a crash is
/// kept. Without a collector (<c>stderr</c>, a backend started by hand) the lines go to stderr as text.
/// Deliberately not Serilog: a backend starts in a few milliseconds and a small footprint matters when hundreds run.
/// </summary>
internal sealed class BackendLog : IDisposable
{
    private static readonly string[] s_labels =
        { "DEBUG5", "DEBUG4", "DEBUG3", "DEBUG2", "DEBUG1", "INFO", "NOTICE", "WARNING", "ERROR", "LOG", "FATAL", "PANIC" };
    private static readonly string[] s_levels =
        { "debug5", "debug4", "debug3", "debug2", "debug1", "info", "notice", "warning", "error", "log", "fatal", "panic" };
    public const int Debug1 = 4;
    public const int Warning = 7;
    public const int Log = 9;
    public const int Fatal = 10;

    /// <summary>The parameter value that sends records to the postmaster's collector.</summary>
    public const string CollectorDestination = "collector";

    private readonly object _gate = new();
    private readonly bool _collector;
    private volatile int _minimum;
    private readonly int _pid = Environment.ProcessId;
    private readonly int _slot;
    private volatile string _worker;

    public BackendLog(string worker, int slot, string destination, string level)
    {
        _worker = worker;
        _slot = slot;
        _collector = destination == CollectorDestination;
        for (int i = 0; i < s_levels.Length; i++) // the postmaster writes the level in lower case
            if (string.Equals(s_levels[i], level))
                _minimum = i;
    }

    /// <summary>The worker this process runs now (a pool member takes the name of the work it is handed).</summary>
    public void SetWorker(string worker) => _worker = worker;

    /// <summary>A new log_min_messages (index in PostgreSQL's server-log order), e.g. after a reload.</summary>
    public void SetMinimum(int severity)
    {
        if (severity >= 0 && severity < s_levels.Length)
            _minimum = severity;
    }

    /// <summary>Writes one entry: the message, then DETAIL, HINT and CONTEXT as given (PostgreSQL's order). As text,
    /// every line carries the prefix (time and pid), a multi-line <paramref name="context"/> (a stack trace)
    /// included; as a record each is one field.</summary>
    public void Write(int severity, string message, string? detail = null, string? hint = null, string? context = null)
    {
        if (severity < _minimum)
            return;
        var now = DateTime.UtcNow;
        lock (_gate)
        {
            if (_collector)
            {
                // Written by hand, not with Utf8JsonWriter: its generic buffers and encoder are not precompiled, and an
                // idle backend must not need the JIT to log a line.
                var r = new StringBuilder(256);
                r.Append("{\"timestamp\":\"").Append(now.ToString("yyyy-MM-dd HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture)).Append(" UTC\",\"pid\":").Append(_pid)
                 .Append(",\"backend_type\":\"backend\",\"worker\":");
                JsonString(r, _worker);
                r.Append(",\"slot\":").Append(_slot).Append(",\"error_severity\":\"").Append(s_labels[severity]).Append("\",\"message\":");
                JsonString(r, message);
                if (detail is not null)
                    JsonString(r.Append(",\"detail\":"), detail);
                if (hint is not null)
                    JsonString(r.Append(",\"hint\":"), hint);
                if (context is not null)
                    JsonString(r.Append(",\"context\":"), context);
                r.Append('}');
                if (LogPipe.WriteRecord(2, _pid, Utf8Text.GetBytes(r.ToString())))
                    return;
                // The collector is gone (the postmaster died): text to the postmaster's own stderr, which it passed on.
                WriteText(Postmaster.Shmem.Backends.BackendParameters.FallbackLogFd, now, severity, message, detail, hint, context);
                return;
            }
            WriteText(2, now, severity, message, detail, hint, context);
        }
    }

    private void WriteText(int fd, DateTime now, int severity, string message, string? detail, string? hint, string? context)
    {
        {
            string prefix = now.ToString("yyyy-MM-dd HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture) + " UTC [" + _pid + "] ";
            var sb = new StringBuilder();
            sb.Append(prefix).Append(s_labels[severity]).Append(":  ").Append(message.Replace("\n", "\n" + prefix + "\t")).Append('\n');
            if (detail is not null)
                sb.Append(prefix).Append("DETAIL:  ").Append(detail.Replace("\n", "\n" + prefix + "\t")).Append('\n');
            if (hint is not null)
                sb.Append(prefix).Append("HINT:  ").Append(hint.Replace("\n", "\n" + prefix + "\t")).Append('\n');
            if (context is not null)
                foreach (var line in context.Split('\n'))
                    if (line.Length > 0)
                        sb.Append(prefix).Append("CONTEXT:  ").Append(line).Append('\n');
            ProcessSpawner.WriteAll(fd, Utf8Text.GetBytes(sb.ToString()));
        }
    }

    /// <summary>A JSON string literal: quotes, backslashes and control characters escaped, everything else as is.</summary>
    internal static void JsonString(StringBuilder sb, string text)
    {
        sb.Append('"');
        foreach (char c in text)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20)
                        sb.Append("\\u").Append(((int)c).ToString("x4"));
                    else
                        sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    public void Dispose()
    {
    }
}
