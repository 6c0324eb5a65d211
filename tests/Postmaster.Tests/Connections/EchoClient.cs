using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Postmaster.Tests.Connections;

/// <summary>A line client for the test connection worker (TestChild's EchoConnectionWorker): connects, reads the
/// greeting (<c>hello session ID NUMBER PID PEER</c>), sends lines and reads replies, each read bounded by a timeout.</summary>
public sealed class EchoClient : IDisposable
{
    public static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(20);

    private readonly Socket _socket;
    private readonly StreamReader _reader;
    private readonly NetworkStream _stream;

    private EchoClient(Socket socket)
    {
        _socket = socket;
        _socket.ReceiveTimeout = (int)ReadTimeout.TotalMilliseconds;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = new StreamReader(_stream, Encoding.UTF8);
    }

    /// <summary>The first line the server sent (null if it closed at once).</summary>
    public string? Greeting { get; private set; }

    /// <summary>The session's id, session number and backend pid from the greeting.</summary>
    public (long Id, int Number, int Pid) Session
    {
        get
        {
            var f = (Greeting ?? throw new InvalidOperationException("no greeting")).Split(' ');
            return (long.Parse(f[2]), int.Parse(f[3]), int.Parse(f[4]));
        }
    }

    public static EchoClient Tcp(int port, IPAddress? address = null) =>
        Connect(new IPEndPoint(address ?? IPAddress.Loopback, port), (address ?? IPAddress.Loopback).AddressFamily);

    public static EchoClient Unix(string path) => Connect(new UnixDomainSocketEndPoint(path), AddressFamily.Unix);

    /// <summary>Connects without reading the greeting.</summary>
    public static EchoClient ConnectOnly(int port) =>
        new(ConnectSocket(new IPEndPoint(IPAddress.Loopback, port), AddressFamily.InterNetwork));

    private static EchoClient Connect(EndPoint ep, AddressFamily family)
    {
        var c = new EchoClient(ConnectSocket(ep, family));
        c.Greeting = c.ReadLine();
        return c;
    }

    private static Socket ConnectSocket(EndPoint ep, AddressFamily family)
    {
        var s = new Socket(family, SocketType.Stream, family == AddressFamily.Unix ? ProtocolType.Unspecified : ProtocolType.Tcp);
        try
        {
            s.Connect(ep);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    public string? ReadLine() => _reader.ReadLine();

    public string? Ask(string line)
    {
        Send(line);
        return ReadLine();
    }

    public void Send(string line) => _stream.Write(Encoding.UTF8.GetBytes(line + "\n"));

    /// <summary>True when the server closed the connection (a read returns end of stream or a reset).</summary>
    public bool IsClosedByServer()
    {
        try
        {
            return _reader.ReadLine() is null;
        }
        catch (IOException)
        {
            return true;
        }
    }

    public void Dispose()
    {
        _reader.Dispose();
        _stream.Dispose();
    }

    /// <summary>A TCP port that was free a moment ago on both loopback addresses.</summary>
    public static int FreePort()
    {
        for (int attempt = 0; attempt < 50; attempt++)
        {
            using var v4 = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            v4.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            int port = ((IPEndPoint)v4.LocalEndPoint!).Port;
            try
            {
                using var v6 = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
                v6.Bind(new IPEndPoint(IPAddress.IPv6Loopback, port));
                return port;
            }
            catch (SocketException)
            {
            }
        }
        throw new InvalidOperationException("no free TCP port on both loopback addresses");
    }
}
