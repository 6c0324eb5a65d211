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
        int port = EchoClient.FreePort();
        var settings = ConfigAssert.Load($"listen_addresses = '127.0.0.1'\nport = {port}\nconnection_worker = 'x.dll:X'\n");
        string dir = Directory.CreateTempSubdirectory("pm-acceptor-").FullName;
        using var log = new ServerLog(LogSinks.Stderr, null, Severity.Warning);
        var acceptor = new ConnectionAcceptor(log, Listeners.Open(settings, dir, log));
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
            acceptor.Dispose();
            clients.ForEach(c => c.Dispose());
            Directory.Delete(dir, recursive: true);
        }
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
