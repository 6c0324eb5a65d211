using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace KeyValue.Tests;

/// <summary>The session loop over a loopback TCP connection, with the table in a byte array: the synchronous one
/// (<see cref="KvServer"/>).</summary>
public sealed class KvServerTests : KvSessionTests
{
    protected override void Serve(Socket server, KvCommands commands, CancellationToken stopping) =>
        KvServer.ServeConnection(server, commands, stopping);
}

/// <summary>The same tests for the asynchronous session loop (<see cref="KvServerAsync"/>).</summary>
public sealed class KvServerAsyncTests : KvSessionTests
{
    protected override void Serve(Socket server, KvCommands commands, CancellationToken stopping) =>
        KvServerAsync.ServeConnectionAsync(server, commands, stopping).GetAwaiter().GetResult();
}

/// <summary>The session loop's behaviour, whichever shape serves it.</summary>
public abstract class KvSessionTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly Socket _client;
    private readonly Socket _server;
    private readonly CancellationTokenSource _stopping = new();
    private readonly LocalKvStorage _storage = new();
    private readonly Task _session;

    protected KvSessionTests()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        _client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _client.Connect(listener.LocalEndPoint!);
        _client.ReceiveTimeout = (int)Timeout.TotalMilliseconds;
        _server = listener.Accept();
        var commands = new KvCommands(_storage);
        _session = Task.Factory.StartNew(() =>
        {
            try
            {
                Serve(_server, commands, _stopping.Token);
            }
            finally
            {
                _server.Dispose(); // as the backend does when a session ends
            }
        }, TaskCreationOptions.LongRunning);
    }

    /// <summary>Runs one session on <paramref name="server"/> until it ends.</summary>
    protected abstract void Serve(Socket server, KvCommands commands, CancellationToken stopping);

    public void Dispose()
    {
        GC.SuppressFinalize(this);
        _client.Dispose();
        _server.Dispose();
        _stopping.Dispose();
    }

    [Fact]
    public void Answers_pipelined_commands_and_commands_split_across_sends()
    {
        Send("PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n*2\r\n$3\r\nGET\r\n$1\r");
        Assert.Equal("+PONG\r\n+OK\r\n", Receive(12)); // sent once the input held no complete command
        Send("\nk\r\nECHO done\r\n");
        Assert.Equal("$2\r\nv1\r\n$4\r\ndone\r\n", Receive(18));
    }

    [Fact]
    public async Task Sends_a_long_pipeline_of_large_replies()
    {
        string value = new('v', 4096);
        Send($"SET k {value}\r\n" + string.Concat(Enumerable.Repeat("GET k\r\n", 1000)) + "QUIT\r\n");
        string reply = $"${value.Length}\r\n{value}\r\n";
        Assert.Equal("+OK\r\n" + string.Concat(Enumerable.Repeat(reply, 1000)) + "+OK\r\n", ReceiveToEnd());
        await _session.WaitAsync(Timeout);
    }

    [Fact]
    public async Task Quit_replies_OK_and_closes()
    {
        Send("QUIT\r\nPING\r\n");
        Assert.Equal("+OK\r\n", ReceiveToEnd());
        await _session.WaitAsync(Timeout);
    }

    [Fact]
    public async Task A_protocol_error_is_answered_then_the_connection_closed()
    {
        Send("PING\r\n*1\r\n$99999999\r\n");
        Assert.Equal("+PONG\r\n-ERR Protocol error: invalid bulk length\r\n", ReceiveToEnd());
        await _session.WaitAsync(Timeout);
    }

    [Fact]
    public async Task The_session_ends_when_the_client_closes()
    {
        Send("PING\r\n");
        Assert.Equal("+PONG\r\n", Receive(7));
        _client.Shutdown(SocketShutdown.Send);
        await _session.WaitAsync(Timeout);
    }

    [Fact]
    public async Task A_stop_during_a_command_ends_the_session_before_the_next()
    {
        _storage.OnWrite = _stopping.Cancel; // the stop arrives during the first SET
        Send("SET a 1\r\nSET b 2\r\n");
        await _session.WaitAsync(Timeout);
        Assert.Equal("", ReceiveToEnd()); // a stop shuts the connection down: replies not sent yet are lost
        Assert.True(_storage.Contains(Convert.ToBase64String("a"u8)));
        Assert.False(_storage.Contains(Convert.ToBase64String("b"u8)));
    }

    [Fact]
    public async Task A_stop_ends_a_session_whose_client_is_idle()
    {
        Send("PING\r\n");
        Assert.Equal("+PONG\r\n", Receive(7)); // the loop is now (or soon) blocked receiving
        _stopping.Cancel();
        await _session.WaitAsync(Timeout);
        Assert.Equal("", ReceiveToEnd());
    }

    [Fact]
    public async Task Closing_the_socket_under_a_blocked_receive_ends_the_session_quietly()
    {
        Send("PING\r\n");
        Assert.Equal("+PONG\r\n", Receive(7)); // the loop is now (or soon) blocked receiving
        _server.Dispose();
        await _session.WaitAsync(Timeout); // and without an exception
    }

    [Theory]
    [InlineData("", KvServer.DefaultMemoryLimit)]
    [InlineData("64MB", 64L << 20)]
    [InlineData(" 1GB ", 1L << 30)]
    [InlineData("65536kB", 64L << 20)]
    [InlineData("10000000", 10000000)]
    [InlineData("64GB", 64L << 30)]
    public void The_argument_is_the_memory_limit(string argument, long size) => Assert.Equal(size, KvServer.ParseSize(argument));

    [Theory]
    [InlineData("65GB")]
    [InlineData("1kB")]
    [InlineData("64 MiB")]
    [InlineData("-64MB")]
    [InlineData("lots")]
    public void A_size_out_of_range_or_not_a_size_is_refused(string argument) =>
        Assert.Throws<ArgumentException>(() => KvServer.ParseSize(argument));

    private void Send(string text) => _client.Send(Encoding.Latin1.GetBytes(text));

    private string Receive(int length)
    {
        var buffer = new byte[length];
        for (int done = 0; done < length;)
        {
            int received = _client.Receive(buffer.AsSpan(done));
            Assert.True(received > 0, $"the server closed the connection after {done} of {length} bytes");
            done += received;
        }
        return Encoding.Latin1.GetString(buffer);
    }

    private string ReceiveToEnd()
    {
        var all = new MemoryStream();
        var buffer = new byte[64 * 1024];
        for (int received; (received = _client.Receive(buffer)) > 0;)
            all.Write(buffer, 0, received);
        return Encoding.Latin1.GetString(all.ToArray());
    }
}
