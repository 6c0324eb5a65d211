namespace KeyValue;

/// <summary>
/// Splits the bytes a client sends into commands (RESP2 requests): arrays of bulk strings
/// (<c>*2\r\n$3\r\nGET\r\n$1\r\nk\r\n</c>), as client libraries send them, and inline commands (<c>PING\r\n</c>), as
/// telnet and redis-benchmark's PING_INLINE send them. Pure: no socket; the server receives into
/// <see cref="GetReceiveSpace"/> and calls <see cref="Commit"/>, tests call <see cref="Append"/>.
/// <para>A command may arrive in pieces (<see cref="TryReadCommand"/> returns false until it is complete) and several
/// may arrive at once (pipelining: call <see cref="TryReadCommand"/> until it returns false). Inline commands are split
/// at spaces and tabs, without Redis's quoting. Empty inline lines and empty arrays (<c>*0</c>, <c>*-1</c>) are
/// skipped, as Redis does.</para>
/// <para><b>Limits</b> (a protocol error beyond them): <see cref="MaxArguments"/> arguments, bulk strings of
/// <see cref="MaxBulkLength"/> bytes, inline commands of <see cref="MaxInlineLength"/> bytes, and
/// <see cref="MaxCommandLength"/> bytes buffered for a command that is still incomplete, so a client cannot make the
/// buffer grow without bound.</para>
/// </summary>
public sealed class RespReader
{
    /// <summary>Most arguments in one command, the command's name included.</summary>
    public const int MaxArguments = 1024;

    /// <summary>Longest inline command line.</summary>
    public const int MaxInlineLength = 64 * 1024;

    /// <summary>Longest "*N" or "$N" line: a sign and 18 digits is more than any accepted length.</summary>
    private const int MaxLengthLine = 32;

    /// <summary>Least free space <see cref="GetReceiveSpace"/> offers, and the buffer's initial size.</summary>
    private const int ReceiveChunk = 16 * 1024;

    private byte[] _buffer = new byte[ReceiveChunk];
    private int _start; // first byte not yet parsed
    private int _end;   // end of the bytes received

    /// <summary>A reader with the given limits.</summary>
    /// <param name="maxBulkLength">Longest bulk string (argument) in bytes.</param>
    /// <param name="maxCommandLength">Most bytes buffered while a command is incomplete; at least
    /// <paramref name="maxBulkLength"/>.</param>
    public RespReader(int maxBulkLength, int maxCommandLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBulkLength);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCommandLength, maxBulkLength);
        MaxBulkLength = maxBulkLength;
        MaxCommandLength = maxCommandLength;
    }

    /// <summary>Longest bulk string in bytes.</summary>
    public int MaxBulkLength { get; }

    /// <summary>Most bytes buffered while a command is incomplete: beyond, <see cref="TryReadCommand"/> throws.</summary>
    public int MaxCommandLength { get; }

    /// <summary>Bytes received and not yet returned as part of a command.</summary>
    public int Buffered => _end - _start;

    /// <summary>Free space to receive into (at least 16 KiB); then <see cref="Commit"/> what was received. Moves the
    /// unparsed bytes: the arguments <see cref="TryReadCommand"/> returned are no longer valid.</summary>
    public Span<byte> GetReceiveSpace() => GetReceiveMemory().Span;

    /// <summary><see cref="GetReceiveSpace"/> as memory, for asynchronous receives.</summary>
    public Memory<byte> GetReceiveMemory()
    {
        if (_start == _end)
            _start = _end = 0;
        if (_buffer.Length - _end < ReceiveChunk)
        {
            byte[] target = _end - _start + ReceiveChunk > _buffer.Length ? new byte[(_end - _start + ReceiveChunk) * 2] : _buffer;
            _buffer.AsSpan(_start, _end - _start).CopyTo(target);
            (_buffer, _end, _start) = (target, _end - _start, 0);
        }
        return _buffer.AsMemory(_end);
    }

    /// <summary>Adds <paramref name="count"/> bytes received into <see cref="GetReceiveSpace"/>.</summary>
    /// <param name="count">Bytes received.</param>
    public void Commit(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _buffer.Length - _end);
        _end += count;
    }

    /// <summary>Adds <paramref name="data"/> as if received (for tests and tools).</summary>
    /// <param name="data">The bytes.</param>
    public void Append(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var space = GetReceiveSpace();
            int count = Math.Min(space.Length, data.Length);
            data[..count].CopyTo(space);
            Commit(count);
            data = data[count..];
        }
    }

    /// <summary>
    /// The next complete command, if one has been received: fills <paramref name="arguments"/> with its name and
    /// arguments (at least one), slices of the reader's buffer valid until the next <see cref="GetReceiveSpace"/> or
    /// <see cref="Append"/>.
    /// </summary>
    /// <param name="arguments">Cleared, then filled.</param>
    /// <returns>False when no complete command is buffered (receive more).</returns>
    /// <exception cref="RespProtocolException">The input is not RESP, or over a limit; the connection cannot recover.</exception>
    public bool TryReadCommand(List<ReadOnlyMemory<byte>> arguments)
    {
        while (_start < _end)
        {
            arguments.Clear();
            int next = _buffer[_start] == (byte)'*' ? ParseArray(arguments) : ParseInline(arguments);
            if (next < 0)
                break;
            _start = next;
            if (arguments.Count > 0)
                return true;
        }
        arguments.Clear();
        if (Buffered > MaxCommandLength)
            throw new RespProtocolException("too big request");
        return false;
    }

    /// <summary>Parses the array command at <see cref="_start"/>: the offset after it, or -1 when incomplete.</summary>
    private int ParseArray(List<ReadOnlyMemory<byte>> arguments)
    {
        int position = _start + 1;
        if (!TryReadLength(ref position, out long count, isCount: true))
            return -1;
        if (count > MaxArguments)
            throw new RespProtocolException("invalid multibulk length");
        for (long i = 0; i < count; i++)
        {
            if (position == _end)
                return -1;
            if (_buffer[position] != (byte)'$')
                throw new RespProtocolException($"expected '$', got '{Printable(_buffer[position])}'");
            position++;
            if (!TryReadLength(ref position, out long length, isCount: false))
                return -1;
            if (length < 0 || length > MaxBulkLength)
                throw new RespProtocolException("invalid bulk length");
            if (_end - position < length + 2)
                return -1;
            if (_buffer[position + (int)length] != (byte)'\r' || _buffer[position + (int)length + 1] != (byte)'\n')
                throw new RespProtocolException("expected CRLF after bulk string");
            arguments.Add(new ReadOnlyMemory<byte>(_buffer, position, (int)length));
            position += (int)length + 2;
        }
        return position; // count <= 0: an empty command, skipped
    }

    /// <summary>Reads the length line at <paramref name="position"/> ("123\r\n", "-1\r\n") and moves past it. False
    /// when the line is incomplete.</summary>
    /// <param name="position">Where the digits start.</param>
    /// <param name="value">The length.</param>
    /// <param name="isCount">An array's element count ("*N"), else a bulk string's length ("$N"): Redis's messages.</param>
    private bool TryReadLength(ref int position, out long value, bool isCount)
    {
        value = 0;
        int available = Math.Min(_end - position, MaxLengthLine);
        int lineLength = _buffer.AsSpan(position, available).IndexOf("\r\n"u8);
        if (lineLength < 0)
        {
            if (available == MaxLengthLine)
                throw new RespProtocolException(isCount ? "too big mbulk count string" : "too big bulk count string");
            return false;
        }
        var digits = _buffer.AsSpan(position, lineLength);
        bool negative = !digits.IsEmpty && digits[0] == (byte)'-';
        if (negative)
            digits = digits[1..];
        if (digits.IsEmpty || digits.ContainsAnyExceptInRange((byte)'0', (byte)'9'))
            throw new RespProtocolException(isCount ? "invalid multibulk length" : "invalid bulk length");
        foreach (byte digit in digits) // clamped: a length that large is over every limit anyway
            value = Math.Min(value * 10 + (digit - '0'), int.MaxValue);
        if (negative)
            value = -value;
        position += lineLength + 2;
        return true;
    }

    /// <summary>Parses the inline command at <see cref="_start"/>: the offset after its line, or -1 when incomplete.</summary>
    private int ParseInline(List<ReadOnlyMemory<byte>> arguments)
    {
        int lineLength = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
        if (lineLength < 0)
        {
            if (_end - _start > MaxInlineLength)
                throw new RespProtocolException("too big inline request");
            return -1;
        }
        int next = _start + lineLength + 1;
        int end = lineLength > 0 && _buffer[_start + lineLength - 1] == (byte)'\r' ? _start + lineLength - 1 : _start + lineLength;
        for (int position = _start; position < end;)
        {
            if (_buffer[position] is (byte)' ' or (byte)'\t')
            {
                position++;
                continue;
            }
            int wordEnd = position;
            while (wordEnd < end && _buffer[wordEnd] is not ((byte)' ' or (byte)'\t'))
                wordEnd++;
            if (arguments.Count == MaxArguments)
                throw new RespProtocolException("invalid multibulk length");
            arguments.Add(new ReadOnlyMemory<byte>(_buffer, position, wordEnd - position));
            position = wordEnd;
        }
        return next; // no words: an empty line, skipped
    }

    private static string Printable(byte b) => b is >= 0x20 and < 0x7F ? ((char)b).ToString() : $"\\x{b:x2}";
}
