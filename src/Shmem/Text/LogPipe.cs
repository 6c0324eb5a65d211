using System.Buffers.Binary;
using System.Text;

namespace Postmaster.Shmem.Text;

/// <summary>
/// The wire format of the log pipe (PostgreSQL's syslogger protocol, our layout): every backend's stdout and stderr
/// are one pipe whose read end the postmaster's log collector owns. A backend sends each record as frames of at most
/// <see cref="MaxFrame"/> bytes (PIPE_BUF, so each frame is one atomic write(2) and frames of different processes
/// never interleave inside each other):
/// <code>
///   0x00 0x00 | length u16 LE | pid i32 LE | kind | length payload bytes
///   kind: 's' a whole record in one frame; 'b' the first frame of a longer record, 'm' a middle one, 'e' the last
/// </code>
/// A record's first frame ('s' or 'b') drops whatever an earlier process of the same pid left unfinished (it died
/// mid-record, and its pid was reused).
/// The payload of a record is one JSON object (the log schema of docs/logging.md). Anything else on the pipe (a
/// library or the runtime writing to stdout or stderr directly) is not framed; the collector takes it line by line as
/// plain text. A frame starts with two NUL bytes, which text does not contain.
/// </summary>
internal static class LogPipe
{
    public const int MaxFrame = 4096;
    public const int HeaderBytes = 9;
    public const int MaxPayload = MaxFrame - HeaderBytes;
    public const byte Single = (byte)'s';
    public const byte Begin = (byte)'b';
    public const byte More = (byte)'m';
    public const byte End = (byte)'e';

    /// <summary>Writes <paramref name="record"/> as frames to <paramref name="fd"/>; false when the pipe is gone.</summary>
    public static bool WriteRecord(int fd, int pid, ReadOnlySpan<byte> record)
    {
        Span<byte> frame = stackalloc byte[MaxFrame];
        bool first = true;
        do
        {
            int n = Math.Min(record.Length, MaxPayload);
            bool last = n == record.Length;
            frame[0] = 0;
            frame[1] = 0;
            BinaryPrimitives.WriteUInt16LittleEndian(frame[2..], (ushort)n);
            BinaryPrimitives.WriteInt32LittleEndian(frame[4..], pid);
            frame[8] = first ? (last ? Single : Begin) : (last ? End : More);
            first = false;
            record[..n].CopyTo(frame[HeaderBytes..]);
            if (!Os.ProcessSpawner.WriteAll(fd, frame[..(HeaderBytes + n)]))
                return false;
            record = record[n..];
        }
        while (!record.IsEmpty);
        return true;
    }
}

/// <summary>What the collector gets from the pipe: a whole record of a process, or a line of plain text.</summary>
internal readonly record struct LogPipeItem(int Pid, byte[]? Record, string? Text);

/// <summary>
/// Reassembles the log pipe's stream (see <see cref="LogPipe"/>): frames are collected per pid until the end frame;
/// unframed bytes become text lines (a NUL that starts no frame is dropped). Bounded: a record longer than
/// <see cref="MaxRecord"/> is cut there; a partial text line longer than that is emitted as is; at most
/// <see cref="MaxPartialRecords"/> processes can be in the middle of a record at once (beyond, the oldest unfinished
/// record is dropped with a note). Not thread-safe (the collector thread's own).
/// </summary>
internal sealed class LogPipeReader
{
    public const int MaxRecord = 1 << 20;
    public const int MaxPartialRecords = 1024;

    private byte[] _buf = new byte[64 * 1024]; // bytes not yet consumed: _buf[0.._len]
    private int _len;
    private readonly Dictionary<int, Partial> _partial = new();

    private sealed class Partial
    {
        public readonly MemoryStream Data = new();
        public bool Cut; // passed MaxRecord: nothing more is kept
        public long Since = Environment.TickCount64;
    }

    /// <summary>Adds what was read and returns every complete item, in order.</summary>
    public List<LogPipeItem> Feed(ReadOnlySpan<byte> data)
    {
        if (_len + data.Length > _buf.Length)
            Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _len + data.Length));
        data.CopyTo(_buf.AsSpan(_len));
        _len += data.Length;
        var items = new List<LogPipeItem>();
        int pos = 0;
        while (pos < _len)
        {
            var rest = _buf.AsSpan(pos, _len - pos);
            if (rest[0] == 0 && (rest.Length < 2 || rest[1] == 0))
            {
                if (rest.Length < LogPipe.HeaderBytes)
                    break; // the rest of the header has not arrived
                int length = BinaryPrimitives.ReadUInt16LittleEndian(rest[2..]);
                int pid = BinaryPrimitives.ReadInt32LittleEndian(rest[4..]);
                byte kind = rest[8];
                if (length > LogPipe.MaxPayload || kind is not (LogPipe.Single or LogPipe.Begin or LogPipe.More or LogPipe.End))
                {
                    pos += 1; // not a frame after all: skip the NUL, the rest is text
                    continue;
                }
                if (rest.Length < LogPipe.HeaderBytes + length)
                    break; // the payload has not arrived
                var payload = rest.Slice(LogPipe.HeaderBytes, length);
                pos += LogPipe.HeaderBytes + length;
                if (kind is LogPipe.Single or LogPipe.Begin && _partial.Remove(pid, out var stale))
                    items.Add(Dropped(pid, stale));
                if (kind == LogPipe.Single)
                {
                    items.Add(new LogPipeItem(pid, payload.ToArray(), null));
                    continue;
                }
                if (!_partial.TryGetValue(pid, out var partial))
                {
                    if (_partial.Count >= MaxPartialRecords)
                    {
                        var oldest = _partial.MinBy(p => p.Value.Since);
                        _partial.Remove(oldest.Key);
                        items.Add(Dropped(oldest.Key, oldest.Value));
                    }
                    _partial[pid] = partial = new Partial();
                }
                if (!partial.Cut && partial.Data.Length + length <= MaxRecord)
                    partial.Data.Write(payload);
                else
                    partial.Cut = true;
                if (kind == LogPipe.End)
                {
                    _partial.Remove(pid);
                    items.Add(new LogPipeItem(pid, partial.Data.ToArray(), null));
                }
                continue;
            }
            int end = rest.IndexOfAny((byte)'\n', (byte)0);
            if (end == 0 && rest[0] == 0)
            {
                pos += 1; // a NUL that starts no frame (text with a NUL in it): dropped
                continue;
            }
            if (end < 0)
            {
                if (rest.Length < MaxRecord)
                    break; // wait for the end of the line
                end = rest.Length;
            }
            string line = Encoding.UTF8.GetString(rest[..end]).TrimEnd('\r');
            if (line.Length > 0)
                items.Add(new LogPipeItem(0, null, line));
            pos += end < rest.Length && rest[end] == (byte)'\n' ? end + 1 : end;
        }
        Array.Copy(_buf, pos, _buf, 0, _len - pos);
        _len -= pos;
        return items;
    }

    /// <summary>At the end (the pipe closed): what is left, as text, and a note for each process that died in the
    /// middle of a record (its frames so far are dropped: a record is written whole or not at all).</summary>
    public List<LogPipeItem> Flush()
    {
        var items = new List<LogPipeItem>();
        var rest = _buf.AsSpan(0, _len).ToArray().Where(b => b != 0).ToArray();
        if (rest.Length > 0)
            items.Add(new LogPipeItem(0, null, Encoding.UTF8.GetString(rest).TrimEnd('\n', '\r')));
        _len = 0;
        foreach (var (pid, partial) in _partial)
            items.Add(Dropped(pid, partial));
        _partial.Clear();
        return items;
    }

    private static LogPipeItem Dropped(int pid, Partial partial) =>
        new(pid, null, $"an incomplete log record of PID {pid} ({partial.Data.Length} bytes) was dropped: the process ended while writing it");
}
