using System.Text;
using Xunit;

namespace KeyValue.Tests;

/// <summary>Requests as clients send them, through the reader, the commands and the writer: the bytes a client gets.</summary>
public sealed class KvCommandsTests
{
    private readonly LocalKvStorage _storage = new();
    private readonly KvCommands _commands;
    private readonly RespReader _reader = new(KvServer.MaxBulkLength, KvServer.MaxCommandLength);
    private readonly RespWriter _writer = new();
    private readonly List<ReadOnlyMemory<byte>> _arguments = [];

    public KvCommandsTests() => _commands = new KvCommands(_storage);

    [Theory]
    [InlineData("PING\r\n", "+PONG\r\n")]
    [InlineData("ping hello\r\n", "$5\r\nhello\r\n")]
    [InlineData("*1\r\n$4\r\nPiNg\r\n", "+PONG\r\n")]
    [InlineData("PING a b\r\n", "-ERR wrong number of arguments for 'ping' command\r\n")]
    [InlineData("ECHO hi\r\n", "$2\r\nhi\r\n")]
    [InlineData("ECHO\r\n", "-ERR wrong number of arguments for 'echo' command\r\n")]
    [InlineData("GET\r\n", "-ERR wrong number of arguments for 'get' command\r\n")]
    [InlineData("GET a b\r\n", "-ERR wrong number of arguments for 'get' command\r\n")]
    [InlineData("SET k\r\n", "-ERR wrong number of arguments for 'set' command\r\n")]
    [InlineData("SET k v EX 10\r\n", "-ERR syntax error\r\n")]
    [InlineData("DEL\r\n", "-ERR wrong number of arguments for 'del' command\r\n")]
    [InlineData("EXISTS\r\n", "-ERR wrong number of arguments for 'exists' command\r\n")]
    [InlineData("INCR\r\n", "-ERR wrong number of arguments for 'incr' command\r\n")]
    [InlineData("DBSIZE x\r\n", "-ERR wrong number of arguments for 'dbsize' command\r\n")]
    [InlineData("FLUSHALL\r\n", "-ERR unknown command 'FLUSHALL'\r\n")]
    [InlineData("COMMAND DOCS\r\n", "*0\r\n")]
    [InlineData("COMMAND\r\n", "*0\r\n")]
    [InlineData("CONFIG GET save\r\n", "*2\r\n$4\r\nsave\r\n$0\r\n\r\n")]
    [InlineData("CONFIG GET APPENDONLY\r\n", "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n")]
    [InlineData("CONFIG GET save appendonly maxmemory\r\n", "*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n")]
    [InlineData("CONFIG GET maxmemory\r\n", "*0\r\n")]
    [InlineData("CONFIG GET\r\n", "-ERR wrong number of arguments for 'config|get' command\r\n")]
    [InlineData("CONFIG\r\n", "-ERR wrong number of arguments for 'config' command\r\n")]
    [InlineData("CONFIG SET save x\r\n", "-ERR unknown subcommand 'SET'. Try CONFIG HELP.\r\n")]
    public void Replies_as_Redis_does(string request, string reply) => Assert.Equal(reply, Run(request));

    [Fact]
    public void Set_get_delete_and_count_keys()
    {
        Assert.Equal("+OK\r\n+OK\r\n", Run("SET a 1\r\n*3\r\n$3\r\nset\r\n$1\r\nb\r\n$3\r\nx y\r\n"));
        Assert.Equal("$1\r\n1\r\n$3\r\nx y\r\n$-1\r\n", Run("GET a\r\nGET b\r\nGET c\r\n"));
        Assert.Equal(":2\r\n", Run("DBSIZE\r\n"));
        Assert.Equal(":3\r\n", Run("EXISTS a b a c\r\n")); // a key named twice counts twice, as in Redis
        Assert.Equal(":2\r\n", Run("DEL a c b a\r\n"));
        Assert.Equal(":0\r\n$-1\r\n", Run("DBSIZE\r\nGET a\r\n"));
    }

    [Fact]
    public void Increment_replies_integers_and_Redis_errors()
    {
        Assert.Equal(":1\r\n:2\r\n$1\r\n2\r\n", Run("INCR n\r\nINCR n\r\nGET n\r\n"));
        Run("SET s abc\r\nSET max 9223372036854775807\r\n");
        Assert.Equal("-ERR value is not an integer or out of range\r\n", Run("INCR s\r\n"));
        Assert.Equal("-ERR increment or decrement would overflow\r\n", Run("INCR max\r\n"));
    }

    [Fact]
    public void Over_the_limits_the_reply_is_an_error()
    {
        string key = new('k', KvLimits.MaxKeyLength + 1);
        string value = new('v', KvLimits.MaxValueLength + 1);
        Assert.Equal("-ERR key too large\r\n", Run($"SET {key} v\r\n"));
        Assert.Equal("-ERR value too large\r\n", Run($"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${value.Length}\r\n{value}\r\n"));
        Assert.Equal("$-1\r\n:0\r\n", Run($"GET {key}\r\nEXISTS {key}\r\n"));
    }

    [Fact]
    public void Quit_replies_OK_and_ends_the_session()
    {
        _reader.Append("QUIT\r\n"u8);
        Assert.True(_reader.TryReadCommand(_arguments));
        Assert.False(_commands.Execute(_arguments, _writer));
        Assert.Equal("+OK\r\n", Encoding.Latin1.GetString(_writer.Written));
    }

    [Fact]
    public void Over_the_memory_limit_a_new_key_gets_Redis_s_OOM_error_and_existing_keys_still_change()
    {
        var commands = new KvCommands(new LocalKvStorage(memoryLimit: 10));
        Assert.Equal("+OK\r\n", Run(commands, "SET a 12345\r\n"));
        Assert.Equal("-OOM command not allowed when used memory > 'maxmemory'.\r\n", Run(commands, "SET b 12345\r\n"));
        Assert.Equal("+OK\r\n$1\r\nx\r\n", Run(commands, "SET a x\r\nGET a\r\n"));
        Assert.Equal("-OOM command not allowed when used memory > 'maxmemory'.\r\n", Run(commands, "INCR counter\r\n"));
        Assert.Equal("$-1\r\n", Run(commands, "GET counter\r\n"));
    }

    [Fact]
    public void Increment_retries_when_another_client_changes_the_value_in_between()
    {
        Run("SET n 5\r\n");
        int writes = 0;
        _storage.OnWrite = () =>
        {
            if (writes++ == 0)
                _storage.Set("n"u8, "10"u8); // another client's SET lands between INCR's read and its write
        };
        Assert.Equal(":11\r\n", Run("INCR n\r\n"));
        _storage.OnWrite = null;
        Assert.Equal("$2\r\n11\r\n", Run("GET n\r\n"));
    }

    [Fact]
    public void A_value_larger_than_the_read_buffer_is_returned_whole()
    {
        string value = new('v', 100_000);
        Assert.Equal("+OK\r\n", Run($"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${value.Length}\r\n{value}\r\n"));
        Assert.Equal($"${value.Length}\r\n{value}\r\n", Run("GET big\r\n"));
    }

    /// <summary>Executes every command in <paramref name="request"/>; the replies.</summary>
    private string Run(string request) => Run(_commands, request);

    private string Run(KvCommands commands, string request)
    {
        _reader.Append(Encoding.Latin1.GetBytes(request));
        while (_reader.TryReadCommand(_arguments))
            Assert.True(commands.Execute(_arguments, _writer));
        Assert.Equal(0, _reader.Buffered);
        string reply = Encoding.Latin1.GetString(_writer.Written);
        _writer.Clear();
        return reply;
    }
}
