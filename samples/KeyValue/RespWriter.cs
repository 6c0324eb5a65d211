using System.Globalization;
using System.Text;

namespace KeyValue;

/// <summary>
/// Encodes RESP2 replies into a buffer in this process's memory. Pure: no socket. Writing is only a copy, so a command
/// may write its reply while it holds a lock (copying a value out of shared memory); the server sends
/// <see cref="Written"/> after releasing it, and <see cref="Clear"/>s.
/// </summary>
public sealed class RespWriter
{
    private byte[] _buffer = new byte[16 * 1024];
    private int _length;

    /// <summary>The replies written since the last <see cref="Clear"/>.</summary>
    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

    /// <summary><see cref="Written"/> as memory, for asynchronous sends (valid until the next write).</summary>
    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _length);

    /// <summary>Bytes in <see cref="Written"/>.</summary>
    public int Length => _length;

    /// <summary>Empties the buffer (after sending it).</summary>
    public void Clear() => _length = 0;

    /// <summary><c>+text</c>: a status such as <c>OK</c> or <c>PONG</c>.</summary>
    /// <param name="text">ASCII without CR or LF.</param>
    public void WriteSimpleString(ReadOnlySpan<byte> text)
    {
        WriteByte((byte)'+');
        WriteBytes(text);
        WriteBytes("\r\n"u8);
    }

    /// <summary><c>-message</c>: an error such as <c>ERR unknown command 'x'</c>. CR and LF, which would end the line
    /// early, become spaces.</summary>
    /// <param name="message">The message; by convention it starts with an upper-case code (ERR).</param>
    public void WriteError(string message)
    {
        WriteByte((byte)'-');
        var text = Reserve(Encoding.UTF8.GetMaxByteCount(message.Length));
        int length = Encoding.UTF8.GetBytes(message, text);
        text[..length].Replace((byte)'\r', (byte)' ');
        text[..length].Replace((byte)'\n', (byte)' ');
        _length += length;
        WriteBytes("\r\n"u8);
    }

    /// <summary><c>:value</c>.</summary>
    /// <param name="value">The integer.</param>
    public void WriteInteger(long value)
    {
        WriteByte((byte)':');
        value.TryFormat(Reserve(20), out int length, provider: CultureInfo.InvariantCulture);
        _length += length;
        WriteBytes("\r\n"u8);
    }

    /// <summary><c>$length</c> and the bytes: a string (binary-safe).</summary>
    /// <param name="value">The bytes; copied.</param>
    public void WriteBulkString(ReadOnlySpan<byte> value)
    {
        WriteLength((byte)'$', value.Length);
        WriteBytes(value);
        WriteBytes("\r\n"u8);
    }

    /// <summary><c>$-1</c>: no value (GET of a missing key).</summary>
    public void WriteNullBulkString() => WriteBytes("$-1\r\n"u8);

    /// <summary><c>*count</c>: an array, whose <paramref name="count"/> elements are written next.</summary>
    /// <param name="count">Number of elements.</param>
    public void WriteArrayHeader(int count) => WriteLength((byte)'*', count);

    private void WriteLength(byte prefix, int length)
    {
        WriteByte(prefix);
        length.TryFormat(Reserve(11), out int written, provider: CultureInfo.InvariantCulture);
        _length += written;
        WriteBytes("\r\n"u8);
    }

    private void WriteByte(byte value)
    {
        Reserve(1)[0] = value;
        _length++;
    }

    private void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(Reserve(bytes.Length));
        _length += bytes.Length;
    }

    /// <summary>At least <paramref name="count"/> free bytes at the end, growing the buffer as needed.</summary>
    private Span<byte> Reserve(int count)
    {
        if (_buffer.Length - _length < count)
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + count));
        return _buffer.AsSpan(_length);
    }
}
