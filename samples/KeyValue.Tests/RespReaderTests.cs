using System.Text;
using Xunit;

namespace KeyValue.Tests;

public sealed class RespReaderTests
{
    private readonly RespReader _reader = new(maxBulkLength: 1024, maxCommandLength: 4096);
    private readonly List<ReadOnlyMemory<byte>> _arguments = [];

    [Fact]
    public void Reads_an_inline_command()
    {
        _reader.Append("PING\r\n"u8);
        Assert.Equal(["PING"], Next());
        Assert.False(_reader.TryReadCommand(_arguments));
        Assert.Equal(0, _reader.Buffered);
    }

    [Fact]
    public void Splits_inline_arguments_at_spaces_and_tabs_and_accepts_a_bare_LF()
    {
        _reader.Append("  set \t key   value\nGET key\r\n"u8);
        Assert.Equal(["set", "key", "value"], Next());
        Assert.Equal(["GET", "key"], Next());
        Assert.False(_reader.TryReadCommand(_arguments));
    }

    [Fact]
    public void Skips_empty_inline_lines_and_empty_arrays()
    {
        _reader.Append("\r\n   \r\n*0\r\n*-1\r\nPING\r\n"u8);
        Assert.Equal(["PING"], Next());
        Assert.False(_reader.TryReadCommand(_arguments));
    }

    [Fact]
    public void Reads_an_array_of_bulk_strings()
    {
        _reader.Append("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n"u8);
        Assert.Equal(["SET", "k", "value"], Next());
        Assert.False(_reader.TryReadCommand(_arguments));
    }

    [Fact]
    public void Bulk_strings_are_binary_safe()
    {
        _reader.Append("*2\r\n$4\r\nECHO\r\n$6\r\na\r\n\0b \r\n"u8);
        Assert.Equal(["ECHO", "a\r\n\0b "], Next());
        Assert.False(_reader.TryReadCommand(_arguments));
    }

    [Fact]
    public void Reads_an_empty_bulk_string()
    {
        _reader.Append("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"u8);
        Assert.Equal(["ECHO", ""], Next());
    }

    [Fact]
    public void Waits_for_a_command_split_at_any_byte()
    {
        byte[] command = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\nPING\r\n"u8.ToArray();
        for (int split = 1; split < command.Length - "PING\r\n".Length; split++)
        {
            var reader = new RespReader(1024, 4096);
            reader.Append(command.AsSpan(0, split));
            Assert.False(reader.TryReadCommand(_arguments), $"complete after {split} bytes");
            reader.Append(command.AsSpan(split));
            Assert.True(reader.TryReadCommand(_arguments));
            Assert.Equal(["SET", "key", "0123456789"], Texts(_arguments));
            Assert.True(reader.TryReadCommand(_arguments));
            Assert.Equal(["PING"], Texts(_arguments));
        }
    }

    [Fact]
    public void Reads_a_command_sent_one_byte_at_a_time()
    {
        byte[] command = "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"u8.ToArray();
        for (int i = 0; i < command.Length - 1; i++)
        {
            _reader.Append(command.AsSpan(i, 1));
            Assert.False(_reader.TryReadCommand(_arguments));
        }
        _reader.Append(command.AsSpan(command.Length - 1));
        Assert.Equal(["GET", "key"], Next());
    }

    [Fact]
    public void Reads_pipelined_commands_from_one_receive()
    {
        _reader.Append("*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\n"u8);
        Assert.Equal(["PING"], Next());
        Assert.Equal(["PING"], Next());
        Assert.Equal(["GET", "a"], Next());
        Assert.False(_reader.TryReadCommand(_arguments)); // the last one is incomplete
        _reader.Append("b\r\n"u8);
        Assert.Equal(["GET", "b"], Next());
    }

    [Fact]
    public void Keeps_an_incomplete_command_across_buffer_moves()
    {
        // Many complete commands then a partial one: GetReceiveSpace moves the partial one to the buffer's start.
        var text = new StringBuilder();
        for (int i = 0; i < 2000; i++)
            text.Append("*2\r\n$4\r\nECHO\r\n$4\r\n").Append(i.ToString("D4")).Append("\r\n");
        byte[] bytes = Encoding.ASCII.GetBytes(text.ToString());
        int sent = 0, read = 0;
        while (sent < bytes.Length)
        {
            var space = _reader.GetReceiveSpace();
            int count = Math.Min(Math.Min(space.Length, 1000), bytes.Length - sent);
            bytes.AsSpan(sent, count).CopyTo(space);
            _reader.Commit(count);
            sent += count;
            while (_reader.TryReadCommand(_arguments))
                Assert.Equal(["ECHO", read++.ToString("D4")], Texts(_arguments));
        }
        Assert.Equal(2000, read);
    }

    [Theory]
    [InlineData("*1\r\n+PING\r\n", "Protocol error: expected '$', got '+'")]
    [InlineData("*x\r\n", "Protocol error: invalid multibulk length")]
    [InlineData("*\r\n", "Protocol error: invalid multibulk length")]
    [InlineData("*1025\r\n", "Protocol error: invalid multibulk length")]
    [InlineData("*1\r\n$-1\r\n", "Protocol error: invalid bulk length")]
    [InlineData("*1\r\n$1x\r\n", "Protocol error: invalid bulk length")]
    [InlineData("*1\r\n$1025\r\n", "Protocol error: invalid bulk length")]
    [InlineData("*1\r\n$99999999999999999999999\r\n", "Protocol error: invalid bulk length")]
    [InlineData("*1\r\n$4\r\nPINGxx", "Protocol error: expected CRLF after bulk string")]
    [InlineData("*11111111111111111111111111111111111", "Protocol error: too big mbulk count string")]
    [InlineData("*1\r\n$11111111111111111111111111111111111", "Protocol error: too big bulk count string")]
    public void Rejects_malformed_arrays(string input, string message)
    {
        _reader.Append(Encoding.ASCII.GetBytes(input));
        var e = Assert.Throws<RespProtocolException>(() => _reader.TryReadCommand(_arguments));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void Rejects_an_inline_line_over_the_limit()
    {
        var reader = new RespReader(1024, 1 << 20);
        reader.Append(Encoding.ASCII.GetBytes(new string('a', RespReader.MaxInlineLength)));
        Assert.False(reader.TryReadCommand(_arguments)); // at the limit: waits for the line's end
        reader.Append("a"u8);
        var e = Assert.Throws<RespProtocolException>(() => reader.TryReadCommand(_arguments));
        Assert.Equal("Protocol error: too big inline request", e.Message);
    }

    [Fact]
    public void Rejects_an_inline_command_with_too_many_arguments()
    {
        var reader = new RespReader(1024, 1 << 20);
        reader.Append(Encoding.ASCII.GetBytes(string.Join(' ', Enumerable.Repeat("x", RespReader.MaxArguments + 1)) + "\r\n"));
        var e = Assert.Throws<RespProtocolException>(() => reader.TryReadCommand(_arguments));
        Assert.Equal("Protocol error: invalid multibulk length", e.Message);
    }

    [Fact]
    public void Rejects_a_command_longer_than_the_limit_before_it_is_complete()
    {
        // 5 bulk strings of 1000 bytes: each within the bulk limit, together over the 4096-byte command limit.
        _reader.Append("*5\r\n"u8);
        for (int i = 0; i < 4; i++)
        {
            _reader.Append("$1000\r\n"u8);
            _reader.Append(new byte[1000]);
            _reader.Append("\r\n"u8);
        }
        Assert.False(_reader.TryReadCommand(_arguments)); // 4 * 1009 + 4 bytes: still under the limit
        _reader.Append("$1000\r\n"u8);
        _reader.Append(new byte[100]);
        var e = Assert.Throws<RespProtocolException>(() => _reader.TryReadCommand(_arguments));
        Assert.Equal("Protocol error: too big request", e.Message);
    }

    [Fact]
    public void Accepts_a_command_of_exactly_the_limits()
    {
        var reader = new RespReader(maxBulkLength: 10, maxCommandLength: 1 << 20);
        reader.Append("*1\r\n$10\r\n0123456789\r\n"u8);
        Assert.True(reader.TryReadCommand(_arguments));
        reader.Append(Encoding.ASCII.GetBytes("*" + RespReader.MaxArguments + "\r\n" + string.Concat(Enumerable.Repeat("$1\r\nx\r\n", RespReader.MaxArguments))));
        Assert.True(reader.TryReadCommand(_arguments));
        Assert.Equal(RespReader.MaxArguments, _arguments.Count);
    }

    /// <summary>The next command's arguments; fails when no command is complete.</summary>
    private string[] Next()
    {
        Assert.True(_reader.TryReadCommand(_arguments), "no complete command");
        return Texts(_arguments);
    }

    private static string[] Texts(List<ReadOnlyMemory<byte>> arguments) =>
        arguments.Select(a => Encoding.Latin1.GetString(a.Span)).ToArray();
}
