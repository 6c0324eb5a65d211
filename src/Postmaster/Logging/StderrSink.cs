using System.Globalization;
using System.Text;
using Postmaster.Shmem.Os;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting;

namespace Postmaster.Logging;

/// <summary>A sink that can hold what it is given and write it at once: the collector opens a batch around each
/// read of the log pipe (hundreds of records under a storm), so they cost one write(2) instead of one each.</summary>
internal interface IBatchingSink
{
    void BeginBatch();

    /// <summary>Writes what the batch held.</summary>
    void EndBatch();
}

/// <summary>
/// The text log on standard error (the terminal, the detached daemon's log file, or journald under systemd): each
/// event formatted by <see cref="PgTextFormatter"/> and written to descriptor 2 with write(2) as whole lines, one
/// write per event, or one per batch (<see cref="IBatchingSink"/>). Replaces Serilog's console sink, which flushes
/// each event and cannot batch. Descriptor 2 is looked up at each write, so a log reopen (dup2 onto 2) takes effect
/// at the next one. A failed write (stderr closed) drops the text: logging never stops the server.
/// </summary>
internal sealed class StderrSink : ILogEventSink, IBatchingSink
{
    /// <summary>Held text is written when it passes this, batch or not.</summary>
    private const int FlushBytes = 64 * 1024;

    private readonly object _gate = new();
    private readonly ITextFormatter _formatter;
    private readonly StringWriter _text = new(CultureInfo.InvariantCulture);
    private byte[] _pending = new byte[FlushBytes * 2];
    private int _length;
    private int _batches;

    public StderrSink(ITextFormatter formatter) => _formatter = formatter;

    public void Emit(LogEvent logEvent) => Emit((_formatter, logEvent), static (s, w) => s._formatter.Format(s.logEvent, w));

    /// <summary>A backend's record, formatted straight from its fields (<see cref="PgTextFormatter.Format(in RecordFields, TextWriter)"/>).</summary>
    public void Emit(in RecordFields record) => Emit(record, static (r, w) => PgTextFormatter.Format(r, w));

    private void Emit<T>(T state, Action<T, TextWriter> format)
    {
        lock (_gate)
        {
            var sb = _text.GetStringBuilder();
            sb.Clear();
            format(state, _text);
            Append(sb);
            if (_batches == 0 || _length >= FlushBytes)
                Flush();
        }
    }

    public void BeginBatch()
    {
        lock (_gate)
            _batches++;
    }

    public void EndBatch()
    {
        lock (_gate)
        {
            if (_batches > 0)
                _batches--;
            if (_batches == 0)
                Flush();
        }
    }

    private void Append(StringBuilder sb)
    {
        foreach (var chunk in sb.GetChunks())
        {
            int most = Encoding.UTF8.GetMaxByteCount(chunk.Length);
            if (_pending.Length - _length < most)
                Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _length + most));
            _length += Encoding.UTF8.GetBytes(chunk.Span, _pending.AsSpan(_length));
        }
    }

    private void Flush()
    {
        if (_length > 0)
            ProcessSpawner.WriteAll(2, _pending.AsSpan(0, _length)); // false: stderr is gone; nothing else to tell
        _length = 0;
        if (_pending.Length > FlushBytes * 4)
            _pending = new byte[FlushBytes * 2]; // one huge record does not keep its buffer
    }
}
