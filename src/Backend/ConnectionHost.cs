using System.Net.Sockets;
using System.Text;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;
using Postmaster.Workers;

namespace Postmaster.Backend;

/// <summary>
/// A connection backend's life (PostgreSQL's PostgresMain loop, one session after another): connect to the
/// postmaster's acceptor channel (a SOCK_SEQPACKET Unix socket: one message per packet) and say "ready"; get a
/// session, serve it with the connection worker; after a clean session (the worker returned, no lock held, no critical
/// section open) say "ready" again, until <c>max_sessions_per_backend</c>. A session comes one of two ways:
/// <list type="bullet">
/// <item>with a ticket ('T', standing until withdrawn with 'W'): the backend accepts connections on the postmaster's
/// listening sockets itself, one session after another (the sockets come once as 'F' messages; it waits on them with
/// EPOLLEXCLUSIVE, so a connection wakes one idle backend). It takes the session id from the instance counters,
/// counts the connection there, and shows the session in its own slot; it wakes the acceptor ('A', one byte) only
/// when it leaves fewer accepting backends than the spares kept (a hint in the counters), so the acceptor can ask for
/// more or listen itself. This is the common path: the postmaster is not on the way of a new connection at all (the
/// prefork model of Apache and nginx);</item>
/// <item>a hand-off ('S', with the client's descriptor over SCM_RIGHTS): a connection the acceptor accepted itself,
/// when no backend was free to; the backend says "ready" after it.</item>
/// </list>
/// The channel closing (the postmaster released this backend) or a stop request ends the loop; a session that threw
/// or left a lock held ends the process (exit 1), so a backend in doubt never serves another client. The worker
/// instance is created once and serves every session.
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
    public int Run(string channelName, int maxSessions, int concurrent, CpuSchedulingPolicy policy, string entry, string dataDir)
    {
        // connection_scheduling_policy: set before the worker starts any thread, so that its threads inherit it.
        if (CpuScheduling.TrySetForProcess(policy) is int errno and not 0)
            _log.Write(BackendLog.Warning, $"connection backend: could not set the CPU scheduling policy to "
                + $"\"{CpuScheduling.Name(policy)}\" (sched_setscheduler: {Shmem.Os.OsError.Text(errno)}, errno {errno}); "
                + "it keeps the one it has", hint: "Set connection_scheduling_policy = other where the call is not allowed.");
        try
        {
            return RunSessions(channelName, maxSessions, concurrent, entry, dataDir);
        }
        catch (Shmem.Errors.OsCallException e)
        {
            _log.Write(BackendLog.Debug1, $"connection backend: the channel to the postmaster failed: {e.Message}");
            return BackendHost.ExitDone;
        }
    }

    private int RunSessions(string channelName, int maxSessions, int concurrent, string entry, string dataDir)
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
        if (concurrent > 1)
            ConcurrentSessions.PrepareRuntime(worker); // before the first socket of the process is created
        using var channel = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            channel.Connect(new UnixDomainSocketEndPoint(channelName));
        }
        catch (SocketException e)
        {
            _log.Write(BackendLog.Fatal, $"connection backend: could not connect to the postmaster's connection channel: {e.Message}");
            return BackendHost.ExitFailure;
        }
        // A stop request wakes the blocking receive (and the epoll wait): shutdown(2) ends the channel with 0 bytes.
        using var wake = _stop.Token.Register(() => ShutDown(channel));
        if (concurrent > 1)
            return new ConcurrentSessions(_context, _owner, _stop, _log, _name, worker, channel, maxSessions, concurrent).Run();
        int fd = (int)channel.Handle;
        using var accepting = new AcceptSet(fd);
        var slots = _context.Shmem.Slots;
        var counters = InstanceCounters.Open(_context.Shmem.Main.Index, out _); // null: damaged; hand-offs only
        int slot = _context.Slot;
        var buffer = new byte[256];
        bool ticket = false; // the acceptor lets this backend accept connections itself
        bool direct = counters is not null; // false once accepting on the listeners failed: hand-offs only
        bool ready = true;
        for (int served = 0; ;)
        {
            if (_stop.IsSet)
                return BackendHost.ExitDone;
            if (ready && FdPassing.Send(fd, "R"u8, -1, nonBlocking: false) != 0)
                return BackendHost.ExitDone; // the postmaster closed the channel
            ready = false;
            if (ticket && direct && accepting.Listeners.Count > 0)
            {
                int which = accepting.Wait(-1, out bool message);
                if (which >= 0 && !message && !slots.TryClaimSession(slot, BackendSlotArray.SessionClaimedByBackend))
                    message = true; // the acceptor claimed this backend for a hand-off: its 'S' is on the way
                if (message)
                {
                    if (which >= 0) // that connection woke only this process: let the acceptor look at the listeners
                        FdPassing.Send(fd, "A"u8, -1, nonBlocking: true);
                    // below: the channel's message (a hand-off, a withdrawal, or its end)
                }
                else if (which < 0)
                {
                    continue; // a signal, or nothing
                }
                else
                {
                    int client = accepting.TryAccept(which);
                    if (client == -Shmem.Interop.Errno.EAGAIN)
                    {
                        slots.ReleaseSessionClaim(slot);
                        continue; // another backend (or the acceptor) took it
                    }
                    if (client < 0)
                    {
                        // Out of descriptors, or a listener shut down: give the ticket back ('N' also says "ready"),
                        // and take connections only from the acceptor from now on.
                        slots.ReleaseSessionClaim(slot);
                        direct = false;
                        ticket = false;
                        counters!.LeaveAccepting();
                        _log.Write(BackendLog.Debug1, $"connection backend: accept on a listening socket failed (errno {-client}); hand-offs only");
                        FdPassing.Send(fd, "N"u8, -1, nonBlocking: false);
                        continue;
                    }
                    // Accepted here: the acceptor learns of it from the slot, and is woken only when this leaves fewer
                    // accepting backends than it keeps spare (it then asks for more, or listens itself).
                    long left = counters!.LeaveAccepting();
                    long id = counters.TakeSessionId();
                    counters.CountAccepted(direct: true);
                    var socket = new Socket(new SafeSocketHandle(client, ownsHandle: true));
                    long acceptedMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                    string peer = PeerText.Of(socket);
                    served++;
                    slots.SetSession(slot, id, acceptedMs, served, peer);
                    if (left < Math.Max(1, counters.SpareTarget))
                        FdPassing.Send(fd, "A"u8, -1, nonBlocking: true); // full: the acceptor has messages to read anyway
                    if (RunSession(worker, socket, id, served, acceptedMs, peer, maxSessions, slots, slot, counters) is int exit)
                        return exit;
                    continue; // the ticket stands: accept the next one
                }
            }
            int n = FdPassing.Receive(fd, buffer, out int receivedFd);
            if (n <= 0)
            {
                FdPassing.Close(receivedFd);
                return BackendHost.ExitDone; // released (channel closed), or stopping
            }
            switch (buffer[0])
            {
                case (byte)'F' when receivedFd >= 0: // a listening socket, for direct accepts
                    accepting.AddListener(receivedFd);
                    continue;
                case (byte)'T' when n == 1 && receivedFd < 0: // a ticket: accept connections here until withdrawn
                    if (direct)
                        ticket = true; // the acceptor counts this backend as accepting from now on
                    else
                        FdPassing.Send(fd, "N"u8, -1, nonBlocking: false); // cannot: hand-offs only ('N' says ready)
                    continue;
                case (byte)'W' when n == 1 && receivedFd < 0: // the ticket withdrawn (max_connections was lowered)
                    if (ticket && direct)
                        counters!.LeaveAccepting();
                    ticket = false;
                    ready = true;
                    continue;
                case (byte)'S' when n >= 17 && receivedFd >= 0: // a connection the acceptor accepted (ticket or not)
                {
                    long id = BitConverter.ToInt64(buffer, 1);
                    long acceptedMs = BitConverter.ToInt64(buffer, 9);
                    string peer = Encoding.UTF8.GetString(buffer, 17, n - 17);
                    FdPassing.MakeBlocking(receivedFd);
                    var socket = new Socket(new SafeSocketHandle(receivedFd, ownsHandle: true));
                    served++;
                    slots.SetSession(slot, id, acceptedMs, served, peer); // replaces the acceptor's claim, if any
                    if (RunSession(worker, socket, id, served, acceptedMs, peer, maxSessions, slots, slot, accepting: null) is int exit)
                        return exit;
                    ready = true; // after a hand-off the acceptor waits for "ready"; a ticket still stands
                    continue;
                }
                default:
                    FdPassing.Close(receivedFd);
                    _log.Write(BackendLog.Warning, $"connection backend: unexpected message from the postmaster ({n} bytes, kind {buffer[0]}); exiting");
                    return BackendHost.ExitDone;
            }
        }
    }

    /// <summary>Serves a session already shown in the slot, then clears the slot: free again, or "leaving" when the
    /// backend exits now (the session did not end cleanly, the session limit, a stop), so nobody hands it another.
    /// <paramref name="accepting"/>: the counters whose hint of accepting backends this one returns to (a direct
    /// session; before the slot says free, so the hint errs low, never high). The exit code, or null to go on.</summary>
    private int? RunSession(object worker, Socket socket, long id, int number, long acceptedMs, string peer, int maxSessions,
        BackendSlotArray slots, int slot, InstanceCounters? accepting)
    {
        bool clean = Serve(worker, socket, id, number, acceptedMs, peer);
        bool limit = maxSessions > 0 && number >= maxSessions;
        bool leaving = !clean || limit || _stop.IsSet;
        if (!leaving)
            accepting?.ReturnAccepting();
        slots.EndSession(slot, leaving);
        if (!clean)
            return BackendHost.ExitFailure;
        if (!limit)
            return null;
        _log.Write(BackendLog.Debug1, $"connection backend served {number} sessions (max_sessions_per_backend); exiting");
        return BackendHost.ExitDone;
    }

    /// <summary>One session; false when it did not end cleanly (the backend must not serve another).</summary>
    private bool Serve(object worker, Socket socket, long id, int number, long acceptedMs, string peer)
    {
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

    internal static void ShutDown(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    internal static void Close(ClientSession session)
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
