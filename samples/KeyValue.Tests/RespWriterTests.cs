using System.Text;
using Xunit;

namespace KeyValue.Tests;

public sealed class RespWriterTests
{
    private readonly RespWriter _writer = new();

    [Fact]
    public void Encodes_each_reply_type()
    {
        _writer.WriteSimpleString("OK"u8);
        _writer.WriteError("ERR no");
        _writer.WriteInteger(-42);
        _writer.WriteInteger(long.MinValue);
        _writer.WriteBulkString("a\r\nb"u8);
        _writer.WriteBulkString(""u8);
        _writer.WriteNullBulkString();
        _writer.WriteArrayHeader(0);
        Assert.Equal("+OK\r\n-ERR no\r\n:-42\r\n:-9223372036854775808\r\n$4\r\na\r\nb\r\n$0\r\n\r\n$-1\r\n*0\r\n", Written());
    }

    [Fact]
    public void Error_messages_cannot_break_the_line()
    {
        _writer.WriteError("ERR unknown command 'a\r\nb'");
        Assert.Equal("-ERR unknown command 'a  b'\r\n", Written());
    }

    [Fact]
    public void Grows_past_its_initial_buffer_and_clears()
    {
        byte[] value = new byte[100_000];
        _writer.WriteBulkString(value);
        Assert.Equal(100_000 + "$100000\r\n\r\n".Length, _writer.Length);
        _writer.Clear();
        Assert.Equal(0, _writer.Length);
        _writer.WriteSimpleString("PONG"u8);
        Assert.Equal("+PONG\r\n", Written());
    }

    private string Written() => Encoding.Latin1.GetString(_writer.Written);
}
