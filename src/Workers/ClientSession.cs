using System.Net;
using System.Net.Sockets;

namespace Postmaster.Workers;

/// <summary>
/// One client session handed to a connection worker: the connected socket (also as a <see cref="NetworkStream"/>), the
/// peer, a session id unique in the instance, and this backend's session count. The backend owns the socket: it closes
/// it when the session ends (a worker may close it earlier, or shut it down to signal the end to the client).
/// </summary>
public sealed class ClientSession
{
    private NetworkStream? _stream;

    internal ClientSession(Socket socket, long id, int number, DateTime startedAt, string peer, CancellationToken stopping)
    {
        Socket = socket;
        Id = id;
        Number = number;
        StartedAt = startedAt;
        Peer = peer;
        Stopping = stopping;
    }

    /// <summary>The connection (blocking mode; TCP or Unix-domain).</summary>
    public Socket Socket { get; }

    /// <summary>The connection as a stream (created on first use; disposing it closes the socket).</summary>
    public NetworkStream Stream => _stream ??= new NetworkStream(Socket, ownsSocket: false);

    /// <summary>The instance-wide number of this session (1, 2, ... since the postmaster started), as the server log
    /// and <c>status</c> show it.</summary>
    public long Id { get; }

    /// <summary>Which session of this backend this is: 1 for its first.</summary>
    public int Number { get; }

    /// <summary>When the postmaster accepted the connection (UTC).</summary>
    public DateTime StartedAt { get; }

    /// <summary>The client's address as text: <c>127.0.0.1:50312</c>, <c>[::1]:50312</c>, or <c>[local]</c> for a
    /// Unix-domain socket (PostgreSQL's notation).</summary>
    public string Peer { get; }

    /// <summary>The client's endpoint (null for a Unix-domain socket).</summary>
    public IPEndPoint? RemoteEndPoint => Socket.RemoteEndPoint as IPEndPoint;

    /// <summary>Fires on fast shutdown, terminate and postmaster death (the same as <see cref="WorkerContext.Stopping"/>).</summary>
    public CancellationToken Stopping { get; }

    internal void DisposeStream() => _stream?.Dispose();
}
