using System.Buffers;
using System.Text;
using System.Text.Json;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Text;

namespace Postmaster.Backend;

/// <summary>
/// A backend's log: the same PostgreSQL-style lines as the postmaster's on stderr (which the postmaster shares with
/// its children, so all lines end up in one place), and/or one JSON file per backend process
/// (<c>log_directory/NAME-PID.json</c>), as log_destination says. Deliberately not Serilog: a backend starts in a
/// few milliseconds and a small footprint matters when hundreds run.
/// <para>The JSON file is created mode 0600 (whatever the umask) in a directory created 0700, and opened with
/// O_APPEND (<see cref="AppendOnlyFile"/>): each record is one write(2) at the end of the file, so nothing another
/// process appended is ever overwritten.</para>
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

    private readonly object _gate = new();
    private readonly bool _stderr;
    private readonly AppendOnlyFile? _json;
    private readonly ArrayBufferWriter<byte>? _record;
    private volatile int _minimum;
    private readonly int _pid = Environment.ProcessId;
    private readonly string _name;

    public BackendLog(string name, string destination, string? directory, string level)
    {
        _name = name;
        _stderr = destination is "stderr" or "both";
        for (int i = 0; i < s_levels.Length; i++) // the postmaster writes the level in lower case
            if (string.Equals(s_levels[i], level))
                _minimum = i;
        if (destination is "json" or "both" && directory is not null)
        {
            AppendOnlyFile.CreateDirectory(directory);
            _json = AppendOnlyFile.Open(Path.Combine(directory, $"{name}-{_pid}.json"));
            _record = new ArrayBufferWriter<byte>(512);
        }
    }

    /// <summary>A new log_min_messages (index in PostgreSQL's server-log order), e.g. after a reload.</summary>
    public void SetMinimum(int severity)
    {
        if (severity >= 0 && severity < s_levels.Length)
            _minimum = severity;
    }

    /// <summary>Writes one entry: the message, then DETAIL, HINT and CONTEXT as given (PostgreSQL's order). On stderr
    /// every line carries the prefix (time and pid), a multi-line <paramref name="context"/> (a stack trace) included,
    /// so each line can be told apart from other processes' lines; in JSON each is one field of the record.</summary>
    public void Write(int severity, string message, string? detail = null, string? hint = null, string? context = null)
    {
        if (severity < _minimum)
            return;
        var now = DateTime.UtcNow;
        lock (_gate)
        {
            if (_stderr)
            {
                string prefix = now.ToString("yyyy-MM-dd HH:mm:ss.fff") + " UTC [" + _pid + "] ";
                var sb = new StringBuilder();
                sb.Append(prefix).Append(s_labels[severity]).Append(":  ").Append(message).Append('\n');
                if (detail is not null)
                    sb.Append(prefix).Append("DETAIL:  ").Append(detail).Append('\n');
                if (hint is not null)
                    sb.Append(prefix).Append("HINT:  ").Append(hint).Append('\n');
                if (context is not null)
                    foreach (var line in context.Split('\n'))
                        if (line.Length > 0)
                            sb.Append(prefix).Append("CONTEXT:  ").Append(line).Append('\n');
                var err = Console.OpenStandardError();
                var bytes = Utf8Text.GetBytes(sb.ToString());
                err.Write(bytes);
            }
            if (_json is not null && _record is not null)
            {
                _record.ResetWrittenCount();
                using (var w = new Utf8JsonWriter(_record))
                {
                    w.WriteStartObject();
                    w.WriteString("Timestamp", now.ToString("O"));
                    w.WriteString("Severity", s_labels[severity]);
                    w.WriteString("RenderedMessage", message);
                    if (detail is not null) w.WriteString("Detail", detail);
                    if (hint is not null) w.WriteString("Hint", hint);
                    if (context is not null) w.WriteString("Context", context);
                    w.WriteNumber("ProcessId", _pid);
                    w.WriteString("BackendType", _name);
                    w.WriteEndObject();
                }
                _record.GetSpan(1)[0] = (byte)'\n';
                _record.Advance(1);
                _json.Write(_record.WrittenSpan); // one write(2): the line lands whole at the end of the file
            }
        }
    }

    public void Dispose() => _json?.Dispose();
}
