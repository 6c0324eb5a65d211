using System.Net;
using System.Net.Sockets;
using System.Text;
using Postmaster.Connections;
using Postmaster.Logging;
using Postmaster.Tests.Configuration;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Connections;

/// <summary>The documented outcome for a connection in each of the supervisor's phases, on the real acceptor with real
/// sockets (no backend: a served connection would need a connection backend, ConnectionTests cover that): before
/// ready it waits in the backlog; while open and no backend is free it waits for one; during crash recovery it is
/// refused with "the database system is in recovery mode", and so is every connection that was waiting; at shutdown the
/// listening socket is closed (a new connect is refused by the kernel) and whatever waited gets "the database system is
/// shutting down".</summary>
public sealed class AcceptorModeTests
{
    [Fact]
    public void Each_phase_gives_a_connection_its_documented_outcome()
    {
        using var test = new TestAcceptor();
        var (acceptor, port) = (test.Acceptor, test.Port);
        var clients = new List<Socket>();
        try
        {
            acceptor.Configure(maxConnections: 10, spare: 0, rejection: "too many", slots: null, counters: null);
            acceptor.Start();

            var early = Connect(port, clients); // Starting: the kernel's backlog holds it, nothing is accepted
            Assert.False(Readable(early), "nothing is sent before ready");
            Assert.Equal(0, acceptor.Wanted());

            acceptor.SetMode(AcceptMode.Open); // now it is accepted and waits for a connection backend
            Wait.Until(() => acceptor.Wanted() == 1, "the connection from the backlog to wait for a backend");
            var waiting = Connect(port, clients);
            Wait.Until(() => acceptor.Wanted() == 2, "the second connection to wait for a backend");
            Assert.False(Readable(early) || Readable(waiting), "a waiting connection is not answered");

            acceptor.SetMode(AcceptMode.Recovery);
            Assert.Equal("the database system is in recovery mode", ReadLineUntilClosed(early));
            Assert.Equal("the database system is in recovery mode", ReadLineUntilClosed(waiting));
            Assert.Equal("the database system is in recovery mode", ReadLineUntilClosed(Connect(port, clients)));

            acceptor.SetMode(AcceptMode.Open); // recovered: connections wait for a backend again
            var afterRecovery = Connect(port, clients);
            Wait.Until(() => acceptor.Wanted() == 1, "a connection after recovery to wait for a backend");

            acceptor.SetMode(AcceptMode.Closed);
            Assert.Equal("the database system is shutting down", ReadLineUntilClosed(afterRecovery));
            Wait.Until(() => !CanConnect(port), "the listening socket to close at shutdown");
            Assert.Equal(4, acceptor.Accepted);
            Assert.Equal(4, acceptor.Rejected);
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    /// <summary>Across a rebuilt segment the connection totals and the session ids go on from where the old segment's
    /// backends left them, including what a backend counted while it was being stopped (after the acceptor's first
    /// snapshot): no session id is issued twice.</summary>
    [Fact]
    public void A_rebuilt_segment_goes_on_from_the_last_session_id_the_old_one_issued()
    {
        using var before = new Dsm.DsmTestInstance("acceptor-rebuild-a", Shmem.Dsm.DsmType.Posix);
        using var after = new Dsm.DsmTestInstance("acceptor-rebuild-b", Shmem.Dsm.DsmType.Posix);
        using var test = new TestAcceptor();
        var acceptor = test.Acceptor;
        var old = Shmem.Instance.InstanceCounters.Require(before.Main.Index);
        acceptor.Configure(maxConnections: 10, spare: 0, rejection: "too many", slots: before.Instance.Slots, counters: old);
        for (int i = 0; i < 3; i++) // three sessions that backends accepted themselves
        {
            old.TakeSessionId();
            old.CountAccepted(direct: true);
        }
        acceptor.Configure(10, 0, "too many", null, null); // a crash: the segment is about to be rebuilt
        old.TakeSessionId(); // a ticketed backend accepts once more before its SIGQUIT arrives
        old.CountAccepted(direct: true);
        acceptor.RefreshTotals(old); // every backend has exited: just before the rebuild
        var rebuilt = Shmem.Instance.InstanceCounters.Require(after.Main.Index);
        acceptor.Configure(10, 0, "too many", after.Instance.Slots, rebuilt);
        Assert.Equal(5, rebuilt.TakeSessionId());
        Assert.Equal(4, rebuilt.DirectConnections.Direct);
        Assert.Equal(4, rebuilt.Connections.Accepted);
    }

    /// <summary>The acceptor's side of tickets, with this test process as the connection backend (a real channel, real
    /// slots in a real main segment): a ready backend gets the listening sockets and a ticket, and the acceptor stops
    /// listening; while the ticketed backend is in a session (its slot says so) the acceptor listens and accepts; when
    /// that session ends, the connection that waited is handed to the ticketed backend (it takes hand-offs too), never
    /// left waiting for a backend that is not coming.</summary>
    [Fact]
    public void A_connection_accepted_while_every_ticketed_backend_was_busy_goes_to_the_first_that_is_free()
    {
        using var shmem = new Dsm.DsmTestInstance("acceptor-tickets", Shmem.Dsm.DsmType.Posix);
        using var test = new TestAcceptor();
        var (acceptor, port) = (test.Acceptor, test.Port);
        var clients = new List<Socket>();
        var counters = Shmem.Instance.InstanceCounters.Require(shmem.Main.Index);
        using var channel = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            acceptor.Configure(maxConnections: 10, spare: 0, rejection: "too many", slots: shmem.Instance.Slots, counters: counters);
            var buffer = new byte[64];
            int fd = JoinAsTicketedBackend(acceptor, channel, counters, buffer);
            using var accepting = new Postmaster.Shmem.Os.AcceptSet((int)channel.Handle); // as a backend waits
            accepting.AddListener(fd);

            // This "backend" accepts one itself and is in a session: the acceptor listens again.
            var direct = Connect(port, clients);
            Assert.Equal(0, accepting.Wait((int)ClusterOptions.DefaultTimeout.TotalMilliseconds, out bool message)); // listener 0 is readable
            Assert.False(message);
            Assert.True(shmem.Instance.Slots.TryClaimSession(0, Shmem.Backends.BackendSlotArray.SessionClaimedByBackend)); // as a backend does
            int accepted = accepting.TryAccept(0);
            Assert.True(accepted >= 0, $"accept4: errno {-accepted}");
            using (var mine = new Socket(new SafeSocketHandle(accepted, ownsHandle: true)))
            {
                shmem.Instance.Slots.SetSession(0, counters.TakeSessionId(), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 1, "x");
                channel.Send("A"u8); // the wake a backend sends when it leaves no accepting backend
                Wait.Until(() => counters.DirectConnections.Accepting == 0, "the acceptor to see the backend in a session");
                var waiting = Connect(port, clients); // accepted by the acceptor, waits: no backend is free
                Wait.Until(() => acceptor.Accepted == 1, "the acceptor to accept the second connection");
                Assert.False(channel.Poll(200_000, SelectMode.SelectRead), "nothing is handed to a backend in a session");
                shmem.Instance.Slots.EndSession(0); // the session is over; a ticketed backend sends nothing
                (char kind, fd) = Receive(channel, buffer); // within the acceptor's next look at the slots
                Assert.Equal('S', kind);
                Assert.True(fd >= 0);
                Postmaster.Shmem.Os.FdPassing.MakeBlocking(fd); // as the backend does
                using var handed = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
                handed.Send("served\r\n"u8);
                Assert.Equal("served", ReadLine(waiting));
            }
            Assert.Equal(1, acceptor.Accepted);
            Assert.Equal((1L, 0L), counters.Connections); // the acceptor counts its own; a backend counts what it accepts
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    /// <summary>At <c>max_connections = 1</c> with one idle ticketed backend that does not take a pending connection
    /// (its wake-up went elsewhere), the acceptor takes it at its next look and hands it to that backend: the free
    /// ticket is this connection's place, so it is not refused as one too many.</summary>
    [Fact]
    public void A_pending_connection_the_acceptor_takes_uses_a_free_tickets_place_not_another()
    {
        using var shmem = new Dsm.DsmTestInstance("acceptor-place", Shmem.Dsm.DsmType.Posix);
        using var test = new TestAcceptor();
        var (acceptor, port) = (test.Acceptor, test.Port);
        var clients = new List<Socket>();
        var counters = Shmem.Instance.InstanceCounters.Require(shmem.Main.Index);
        using var channel = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            acceptor.Configure(maxConnections: 1, spare: 0, rejection: "too many", slots: shmem.Instance.Slots, counters: counters);
            var buffer = new byte[64];
            Postmaster.Shmem.Os.FdPassing.Close(JoinAsTicketedBackend(acceptor, channel, counters, buffer)); // it never accepts itself

            var client = Connect(port, clients); // pending: the only ticketed backend does not take it
            var (kind, fd) = Receive(channel, buffer); // the acceptor's next look takes it and hands it over
            Assert.Equal('S', kind);
            Assert.True(fd >= 0);
            Postmaster.Shmem.Os.FdPassing.MakeBlocking(fd);
            using (var handed = new Socket(new SafeSocketHandle(fd, ownsHandle: true)))
            {
                handed.Send("served\r\n"u8);
                Assert.Equal("served", ReadLine(client));
            }
            Assert.Equal((1L, 0L), counters.Connections); // accepted, none refused
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    /// <summary>Starts <paramref name="acceptor"/> open and joins it as a connection backend would, with this process in
    /// slot 0: connects <paramref name="channel"/>, says ready, gets the listening socket ('F') and a ticket ('T'), and
    /// waits until the acceptor counts it as accepting. The listening socket's descriptor (the caller's to close).</summary>
    private static int JoinAsTicketedBackend(ConnectionAcceptor acceptor, Socket channel, Shmem.Instance.InstanceCounters counters,
        byte[] buffer)
    {
        acceptor.Start();
        acceptor.SetMode(AcceptMode.Open);
        acceptor.Expect(Environment.ProcessId, slot: 0);
        channel.Connect(new UnixDomainSocketEndPoint(acceptor.ChannelName));
        channel.Send("R"u8);
        var (kind, fd) = Receive(channel, buffer);
        Assert.Equal('F', kind); // the listening socket
        Assert.True(fd >= 0);
        Assert.Equal('T', Receive(channel, buffer).Kind);
        Wait.Until(() => counters.DirectConnections.Accepting == 1, "the acceptor to count the ticketed backend as accepting");
        return fd;
    }

    /// <summary>A real acceptor listening on a free loopback port, with a directory and a log of its own; disposing it
    /// ends the acceptor and removes the directory.</summary>
    private sealed class TestAcceptor : IDisposable
    {
        private readonly string _dir = Directory.CreateTempSubdirectory("pm-acceptor-").FullName;
        private readonly ServerLog _log = new(LogSinks.Stderr, null, Severity.Warning);

        public TestAcceptor()
        {
            Port = EchoClient.FreePort();
            var settings = ConfigAssert.Load($"listen_addresses = '127.0.0.1'\nport = {Port}\nconnection_worker = 'x.dll:X'\n");
            Acceptor = new ConnectionAcceptor(_log, Listeners.Open(settings, _dir, _log));
        }

        public int Port { get; }

        public ConnectionAcceptor Acceptor { get; }

        public void Dispose()
        {
            Acceptor.Dispose();
            _log.Dispose();
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static (char Kind, int Fd) Receive(Socket channel, byte[] buffer)
    {
        channel.ReceiveTimeout = (int)ClusterOptions.DefaultTimeout.TotalMilliseconds;
        Assert.True(channel.Poll((int)ClusterOptions.DefaultTimeout.TotalMicroseconds, SelectMode.SelectRead), "a message from the acceptor");
        int n = Postmaster.Shmem.Os.FdPassing.Receive((int)channel.Handle, buffer, out int fd);
        Assert.True(n > 0, "the channel is open");
        return ((char)buffer[0], fd);
    }

    private static string ReadLine(Socket s)
    {
        var received = new MemoryStream();
        var buf = new byte[1];
        while (s.Receive(buf) == 1 && buf[0] != (byte)'\n')
            received.WriteByte(buf[0]);
        return Encoding.UTF8.GetString(received.ToArray()).TrimEnd('\r');
    }

    private static Socket Connect(int port, List<Socket> clients)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = (int)ClusterOptions.DefaultTimeout.TotalMilliseconds };
        clients.Add(s);
        s.Connect(new IPEndPoint(IPAddress.Loopback, port));
        return s;
    }

    private static bool Readable(Socket s) => s.Poll(0, SelectMode.SelectRead);

    private static bool CanConnect(int port)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            s.Connect(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return false;
        }
    }

    /// <summary>Everything the server sends before it closes, as one line without its CRLF.</summary>
    private static string ReadLineUntilClosed(Socket s)
    {
        var received = new MemoryStream();
        var buf = new byte[256];
        int n;
        while ((n = s.Receive(buf)) > 0)
            received.Write(buf, 0, n);
        string text = Encoding.UTF8.GetString(received.ToArray());
        Assert.EndsWith("\r\n", text);
        return text[..^2];
    }
}
