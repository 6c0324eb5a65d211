using System.Net;
using System.Net.Sockets;
using Postmaster.Testing;
using Xunit;

namespace KeyValue.Tests;

/// <summary>The key-value server as users run it: a real postmaster with <c>connection_worker</c> set to
/// <see cref="KvServer"/>, reached with the real redis-cli and redis-benchmark. A missing client is a failure with a
/// clear message, never a skip.</summary>
public sealed class RedisClientTests
{
    private static PostmasterCluster Start(string name, out int port, params (string Name, string Value)[] extra)
    {
        port = FreePort();
        var options = new ClusterOptions { Name = name };
        options.Settings["connection_worker"] = $"{typeof(KvServer).Assembly.Location}:{typeof(KvServer).FullName}";
        options.Settings["port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        options.Settings["listen_addresses"] = "127.0.0.1";
        options.Settings["connection_rejection_message"] = "-ERR max number of clients reached";
        foreach (var (n, v) in extra)
            options.Settings[n] = v;
        return PostmasterCluster.StartNew(options);
    }

    private static string AsyncEntry => $"{typeof(KvServerAsync).Assembly.Location}:{typeof(KvServerAsync).FullName}";

    private static string Tool(string name)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
            if (dir.Length > 0 && File.Exists(Path.Combine(dir, name)))
                return Path.Combine(dir, name);
        throw new InvalidOperationException($"{name} is not installed: these tests need Debian's redis-tools (apt-get install redis-tools)");
    }

    private static string Cli(int port, params string[] command)
    {
        var r = ProcessRunner.Run(Tool("redis-cli"), new[] { "-h", "127.0.0.1", "-p", port.ToString() }.Concat(command));
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.Stdout.TrimEnd('\n');
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Redis_cli_runs_every_command_against_the_shared_table(bool async)
    {
        using var pm = async
            ? Start("kv-cli-async", out int port, ("connection_worker", AsyncEntry), ("concurrent_sessions_per_backend", "8"))
            : Start("kv-cli", out port);
        Assert.Equal("PONG", Cli(port, "PING"));
        Assert.Equal("hello", Cli(port, "ECHO", "hello"));
        Assert.Equal("OK", Cli(port, "SET", "greeting", "hi there"));
        Assert.Equal("hi there", Cli(port, "GET", "greeting")); // another connection, maybe another backend
        Assert.Equal("", Cli(port, "GET", "missing"));
        Assert.Equal("1", Cli(port, "INCR", "n"));
        Assert.Equal("2", Cli(port, "INCR", "n"));
        Assert.Equal("2", Cli(port, "EXISTS", "n", "greeting", "nope"));
        Assert.Equal("2", Cli(port, "DBSIZE"));
        Assert.Equal("1", Cli(port, "DEL", "n"));
        Assert.Equal("1", Cli(port, "DBSIZE"));
        Assert.Contains("ERR unknown command", Cli(port, "FLUSHALL"));
        Assert.Contains("ERR value is not an integer", Cli(port, "INCR", "greeting"));
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void The_table_grows_in_shared_memory_and_keeps_every_key_when_a_serving_backend_is_killed()
    {
        using var pm = Start("kv-grow", out int port);
        string value = new('v', 100_000);
        using (var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            client.Connect(new IPEndPoint(IPAddress.Loopback, port));
            client.ReceiveTimeout = 30_000;
            var request = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 100).Select(i =>
                $"*3\r\n$3\r\nSET\r\n${("key" + i).Length}\r\nkey{i}\r\n${value.Length}\r\n{value}\r\n")));
            client.Send(request);
            var replies = new byte[500];
            int got = 0;
            while (got < 500)
                got += client.Receive(replies, got, 500 - got, SocketFlags.None); // 100 × "+OK\r\n"
            Assert.Equal(string.Concat(Enumerable.Repeat("+OK\r\n", 100)), System.Text.Encoding.ASCII.GetString(replies));

            var table = Assert.Single(pm.Shmem().Registry, r => r.Name == SharedKvStorage.TableName);
            Assert.Equal("hash", table.Type);
            Assert.True(table.Size > 10_000_000, $"the table's area has {table.Size} bytes");

            // Kill the backend serving this connection (it holds no lock between commands): reconciled, not restarted.
            var since = pm.Status();
            var serving = pm.WaitForBackends(b => b.Any(r => r.Session?.Client is not null && r.Pid > 0), "a serving backend")
                .First(r => r.Session?.Client is not null && r.Pid > 0);
            pm.Kill(serving);
            Assert.Equal(RecoveryKind.Reconcile, pm.WaitForRecovery(since));
        }
        Assert.Equal("100", Cli(port, "DBSIZE"));
        Assert.Equal(value, Cli(port, "GET", "key99"));
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Redis_benchmark_with_new_and_persistent_connections_sees_no_error()
    {
        using var pm = Start("kv-bench", out int port, ("max_connections", "60"), ("spare_connection_backends", "4"));
        var persistent = ProcessRunner.Run(Tool("redis-benchmark"),
            ["-h", "127.0.0.1", "-p", port.ToString(), "-c", "20", "-n", "4000", "-t", "set,get", "-q"], timeout: TimeSpan.FromMinutes(3));
        Assert.True(persistent.ExitCode == 0, persistent.ToString());
        Assert.Contains("SET:", persistent.Stdout);
        Assert.Contains("GET:", persistent.Stdout);
        var fresh = ProcessRunner.Run(Tool("redis-benchmark"),
            ["-h", "127.0.0.1", "-p", port.ToString(), "-c", "2", "-n", "300", "-k", "0", "-t", "ping_inline", "-q"], timeout: TimeSpan.FromMinutes(3));
        Assert.True(fresh.ExitCode == 0, fresh.ToString());
        Assert.Contains("PING_INLINE:", fresh.Stdout);
        Assert.Equal("PONG", Cli(port, "PING"));
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void The_asynchronous_server_serves_50_redis_benchmark_clients_from_a_few_backends()
    {
        using var pm = Start("kv-async-bench", out int port, ("connection_worker", AsyncEntry),
            ("concurrent_sessions_per_backend", "25"), ("max_connections", "120"), ("spare_connection_backends", "4"));
        var run = ProcessRunner.Run(Tool("redis-benchmark"),
            ["-h", "127.0.0.1", "-p", port.ToString(), "-c", "50", "-n", "20000", "-t", "set,get,incr", "-q"], timeout: TimeSpan.FromMinutes(3));
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("INCR:", run.Stdout);
        Assert.Equal("20000", Cli(port, "GET", "counter:__rand_int__")); // redis-benchmark's INCR key: no increment lost
        var connection = pm.Status().Backends.Where(b => b.Session is not null).ToList();
        Assert.True(connection.Sum(b => b.Session!.Served) >= 100, "both tests' 50 connections were served");
        Assert.True(connection.Count <= 4, $"{connection.Count} connection backends for 50 clients at 25 each");
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Over_max_connections_redis_cli_gets_the_configured_error()
    {
        using var pm = Start("kv-max", out int port, ("max_connections", "1"));
        using var holder = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        holder.Connect(new IPEndPoint(IPAddress.Loopback, port));
        holder.Send("PING\r\n"u8);
        var buf = new byte[64];
        holder.ReceiveTimeout = 20_000;
        int n = holder.Receive(buf);
        Assert.Equal("+PONG\r\n", System.Text.Encoding.ASCII.GetString(buf, 0, n)); // this session has the one place
        Assert.Contains("max number of clients reached", Cli(port, "PING"));
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    private static int FreePort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }
}
