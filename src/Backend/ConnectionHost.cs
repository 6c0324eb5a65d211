using System.Net.Sockets;
using System.Text;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;
using Postmaster.Workers;

namespace Postmaster.Backend;

/// <summary>
/// A connection backend's life (PostgreSQL's PostgresMain loop, one session after another): connect to the
/// postmaster's acceptor channel and say "ready"; receive a client connection (a descriptor over SCM_RIGHTS); serve it
/// with the connection worker; after a clean session (the worker returned, no lock held, no critical section open)
/// say "ready" again, until <c>max_sessions_per_backend</c>. The channel closing (the postmaster released this backend)
/// or a stop request ends the loop; a session that threw or left a lock held ends the process (exit 1), so a backend in
/// doubt never serves another client. The worker instance is created once and serves every session.
/// </summary>
internal sealed class ConnectionHost
{
    private readonly HostWorkerContext _context;
    private readonly LockOwner _owner;
    private readonly StopRequest _stop;
    private readonly BackendLog _log;
    private readonly string _name;

    public ConnectionHost(HostWorkerContext context, LockOwner owner, StopRequest stop, BackendLog log, string name)
    {
        _context = context;
        _owner = owner;
        _stop = stop;
        _log = log;
        _name = name;
    }

    /// <summary>Runs the session loop; the backend's exit code. The channel failing (the postmaster closed it, or is
    /// gone) ends the loop like a release.</summary>
    public int Run(string channelName, int maxSessions, string entry, string dataDir)
    {
        try
        {
            return RunSessions(channelName, maxSessions, entry, dataDir);
        }
        catch (Shmem.Errors.OsCallException e)
        {
            _log.Write(BackendLog.Debug1, $"connection backend: the channel to the postmaster failed: {e.Message}");
            return BackendHost.ExitDone;
        }
    }

    private int RunSessions(string channelName, int maxSessions, string entry, string dataDir)
    {
        object worker;
        try
        {
            worker = WorkerResolver.ResolveConnectionWorker(entry, dataDir);
        }
        catch (WorkerLoadException e)
        {
            _log.Write(BackendLog.Fatal, $"connection worker: {e.Message}", hint: e.Hint);
            return BackendHost.ExitFailure;
        }
        using var channel = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            channel.Connect(new UnixDomainSocketEndPoint(channelName));
        }
        catch (SocketException e)
        {
            _log.Write(BackendLog.Fatal, $"connection backend: could not connect to the postmaster's connection channel: {e.Message}");
            return BackendHost.ExitFailure;
        }
        // A stop request wakes the blocking receive: shutdown(2) ends it with 0 bytes.
        using var wake = _stop.Token.Register(() => ShutDown(channel));
        int fd = (int)channel.Handle;
        var buffer = new byte[256];
        for (int served = 0; ;)
        {
            if (_stop.IsSet)
                return BackendHost.ExitDone;
            if (FdPassing.Send(fd, "R"u8, -1, nonBlocking: false) != 0)
                return BackendHost.ExitDone; // the postmaster closed the channel
            int n = FdPassing.Receive(fd, buffer, out int clientFd);
            if (n <= 0 || clientFd < 0 || n < 17 || buffer[0] != (byte)'S')
            {
                FdPassing.Close(clientFd);
                return BackendHost.ExitDone; // released (channel closed), or stopping
            }
            long id = BitConverter.ToInt64(buffer, 1);
            long acceptedMs = BitConverter.ToInt64(buffer, 9);
            string peer = Encoding.UTF8.GetString(buffer, 17, n - 17);
            served++;
            if (!Serve(worker, clientFd, id, served, acceptedMs, peer))
                return BackendHost.ExitFailure;
            if (maxSessions > 0 && served >= maxSessions)
            {
                _log.Write(BackendLog.Debug1, $"connection backend served {served} sessions (max_sessions_per_backend); exiting");
                return BackendHost.ExitDone;
            }
        }
    }

    /// <summary>One session; false when it did not end cleanly (the backend must not serve another).</summary>
    private bool Serve(object worker, int clientFd, long id, int number, long acceptedMs, string peer)
    {
        FdPassing.MakeBlocking(clientFd);
        var socket = new Socket(new SafeSocketHandle(clientFd, ownsHandle: true));
        var session = new ClientSession(socket, id, number, DateTimeOffset.FromUnixTimeMilliseconds(acceptedMs).UtcDateTime, peer, _stop.Token);
        _log.Write(BackendLog.Debug1, $"connection received: session {id} from {peer}");
        // A stop request (fast shutdown, terminate) ends the session even when the worker is blocked reading from the
        // client: shutdown(2) wakes the read with end of stream.
        using var wake = _stop.Token.Register(() => ShutDown(socket));
        try
        {
            if (worker is IConnectionWorker sync)
                sync.Serve(_context, session);
            else
                ((IAsyncConnectionWorker)worker).ServeAsync(_context, session, _stop.Token).GetAwaiter().GetResult();
        }
        catch (Exception caught)
        {
            var e = ExceptionReport.Unwrap(caught);
            if (!(_stop.IsSet && e is OperationCanceledException or SocketException or IOException or ObjectDisposedException))
            {
                _log.Write(BackendLog.Fatal, $"connection worker \"{_name}\" failed in session {id} ({peer}): {ExceptionReport.Summary(e)}",
                    context: ExceptionReport.Trace(e));
                return false; // the connection is closed in finally
            }
        }
        finally
        {
            Close(session);
        }
        if (_owner.HeldCount != 0 || _owner.CriticalSectionDepth != 0)
        {
            _log.Write(BackendLog.Warning, $"connection worker \"{_name}\" ended session {id} with {_owner.HeldCount} lock(s) held " +
                                           $"or a critical section open; the backend is not reused");
            return false;
        }
        return true;
    }

    private static void ShutDown(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    private static void Close(ClientSession session)
    {
        try
        {
            session.DisposeStream();
            session.Socket.Dispose();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
        }
    }
}
