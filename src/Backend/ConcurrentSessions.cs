using System.Net.Sockets;
using System.Text;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;
using Postmaster.Workers;

namespace Postmaster.Backend;

/// <summary>
/// A connection backend that serves several sessions at once (<c>concurrent_sessions_per_backend</c> &gt; 1; nginx's
/// and gunicorn's <c>worker_connections</c>). It takes sessions only as hand-offs from the acceptor ('S' over its
/// channel; it holds no ticket and never accepts on the listening sockets), up to the number it was started with: the
/// acceptor counts them, and this backend says "ready" ('R') after each session that ended cleanly.
/// <list type="bullet">
/// <item>An asynchronous worker runs each session as a task started on this thread. .NET's socket continuations run
/// inline on its event loop thread (<c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c>, set here before the first
/// asynchronous socket operation unless the environment already says), so one wake-up serves every session whose
/// client is ready, without a hop to the thread pool. A synchronous worker gets a thread per session.</item>
/// <item>A session that throws ends the backend: it takes no more, shuts down its other sessions' connections, waits
/// for them to end, and exits 1. A lock or critical section left open is seen when no session is in progress (the
/// process's locks cannot be told apart by session while others run), with the same outcome.</item>
/// <item>At its session limit (<c>max_sessions_per_backend</c>) it tells the acceptor ('L'), serves the sessions it
/// has (and any already on their way), and exits. When its channel ends (released at shutdown, a stop) it takes no
/// more sessions and exits once those it has are over; a stop ends them (the token fires, their connections are shut
/// down).</item>
/// </list>
/// The slot shows the newest session, the sessions served and how many are in progress.
/// </summary>
internal sealed class ConcurrentSessions
{
    private const string InlineCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>How long a backend whose session failed waits for its other sessions to end before it exits.</summary>
    private static readonly TimeSpan FailedDrain = TimeSpan.FromSeconds(5);

    private readonly HostWorkerContext _context;
    private readonly LockOwner _owner;
    private readonly StopRequest _stop;
    private readonly BackendLog _log;
    private readonly string _name;
    private readonly object _worker;
    private readonly Socket _channel;
    private readonly int _maxSessions;
    private readonly int _concurrent;
    private readonly object _gate = new();
    private readonly Dictionary<long, Open> _open = new(); // session id → the session, while it runs
    private int _served;
    private bool _leaving; // at the session limit: told the acceptor
    private bool _failed;  // a session did not end cleanly: no more sessions, the others are ended

    public ConcurrentSessions(HostWorkerContext context, LockOwner owner, StopRequest stop, BackendLog log, string name,
        object worker, Socket channel, int maxSessions, int concurrent)
    {
        _context = context;
        _owner = owner;
        _stop = stop;
        _log = log;
        _name = name;
        _worker = worker;
        _channel = channel;
        _maxSessions = maxSessions;
        _concurrent = concurrent;
    }

    /// <summary>Asks .NET to run socket continuations inline on its event-loop thread, for an asynchronous worker, unless
    /// the environment says otherwise. The runtime reads the variable once, when the process creates its first socket
    /// (the channel to the postmaster is one), so this comes before any.</summary>
    public static void PrepareRuntime(object worker)
    {
        if (worker is IAsyncConnectionWorker && Environment.GetEnvironmentVariable(InlineCompletions) is null)
            Environment.SetEnvironmentVariable(InlineCompletions, "1");
    }

    /// <summary>Receives sessions until the channel ends (or a session failed); then waits for those in progress. The
    /// backend's exit code.</summary>
    public int Run()
    {
        _log.Write(BackendLog.Debug1, $"connection backend: serving up to {_concurrent} sessions at once");
        int fd = (int)_channel.Handle;
        if (FdPassing.Send(fd, "R"u8, -1, nonBlocking: false) != 0)
            return BackendHost.ExitDone; // the postmaster closed the channel
        var buffer = new byte[256];
        while (!_stop.IsSet)
        {
            int n = FdPassing.Receive(fd, buffer, out int receivedFd);
            if (n <= 0)
            {
                FdPassing.Close(receivedFd);
                break; // released, a stop, or woken by a session that failed or was the last one
            }
            if (buffer[0] == (byte)'S' && n >= 17 && receivedFd >= 0)
            {
                Start(receivedFd, BitConverter.ToInt64(buffer, 1), BitConverter.ToInt64(buffer, 9),
                    Encoding.UTF8.GetString(buffer, 17, n - 17));
                continue;
            }
            FdPassing.Close(receivedFd);
            _log.Write(BackendLog.Warning, $"connection backend: unexpected message from the postmaster ({n} bytes, kind {buffer[0]}); exiting");
            lock (_gate)
                _failed = true;
            break;
        }
        return Finish();
    }

    private void Start(int clientFd, long id, long acceptedMs, string peer)
    {
        FdPassing.MakeBlocking(clientFd); // the synchronous shape reads and writes blocking; .NET's async sets its own mode
        var socket = new Socket(new SafeSocketHandle(clientFd, ownsHandle: true));
        Open open;
        lock (_gate)
        {
            if (_failed)
            {
                socket.Dispose(); // on its way while the backend is ending: the client is disconnected
                return;
            }
            _served++;
            var session = new ClientSession(socket, id, _served, DateTimeOffset.FromUnixTimeMilliseconds(acceptedMs).UtcDateTime, peer, _stop.Token);
            open = new Open(session, _stop.Token.Register(() => ConnectionHost.ShutDown(socket)));
            _open.Add(id, open);
            _context.Shmem.Slots.SetSession(_context.Slot, id, acceptedMs, _served, peer, _open.Count);
            if (_maxSessions > 0 && _served >= _maxSessions && !_leaving)
            {
                _leaving = true;
                FdPassing.Send((int)_channel.Handle, "L"u8, -1, nonBlocking: false);
                _log.Write(BackendLog.Debug1, $"connection backend served {_served} sessions (max_sessions_per_backend); exiting after those in progress");
            }
        }
        _log.Write(BackendLog.Debug1, $"connection received: session {id} from {peer}");
        if (_worker is IAsyncConnectionWorker asynchronous)
        {
            Task task;
            try
            {
                task = asynchronous.ServeAsync(_context, open.Session, _stop.Token);
            }
            catch (Exception e)
            {
                task = Task.FromException(e);
            }
            task.ContinueWith(t => End(open, t.Exception), CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        else
        {
            var sync = (IConnectionWorker)_worker;
            new Thread(() =>
            {
                Exception? failure = null;
                try
                {
                    sync.Serve(_context, open.Session);
                }
                catch (Exception e)
                {
                    failure = e;
                }
                End(open, failure);
            }) { IsBackground = true, Name = $"session {id}" }.Start();
        }
    }

    /// <summary>A session is over (<paramref name="failure"/>: what it threw). Closes its connection, and either says
    /// "ready" for the next one, or wakes the main loop to end the backend.</summary>
    private void End(Open open, Exception? failure)
    {
        var session = open.Session;
        bool clean = true;
        if (failure is not null)
        {
            var e = ExceptionReport.Unwrap(failure);
            if (!(_stop.IsSet && e is OperationCanceledException or SocketException or IOException or ObjectDisposedException))
            {
                _log.Write(BackendLog.Fatal, $"connection worker \"{_name}\" failed in session {session.Id} ({session.Peer}): {ExceptionReport.Summary(e)}; "
                    + "the backend's other sessions end too", context: ExceptionReport.Trace(e));
                clean = false;
            }
        }
        open.Wake.Dispose();
        ConnectionHost.Close(session);
        bool wakeMain;
        lock (_gate)
        {
            _open.Remove(session.Id);
            if (clean && _open.Count == 0 && (_owner.HeldCount != 0 || _owner.CriticalSectionDepth != 0))
            {
                _log.Write(BackendLog.Warning, $"connection worker \"{_name}\" ended session {session.Id} with {_owner.HeldCount} lock(s) held " +
                                               "or a critical section open; the backend is not reused");
                clean = false;
            }
            if (!clean && !_failed)
            {
                _failed = true;
                foreach (var other in _open.Values)
                    ConnectionHost.ShutDown(other.Session.Socket);
            }
            if (_open.Count == 0)
                _context.Shmem.Slots.EndSession(_context.Slot, leaving: _failed || _leaving);
            else
                _context.Shmem.Slots.SetSessionsOpen(_context.Slot, _open.Count);
            wakeMain = _failed || (_leaving && _open.Count == 0);
            Monitor.PulseAll(_gate);
        }
        if (wakeMain)
            ConnectionHost.ShutDown(_channel); // the main loop's receive returns: the backend ends
        else
            FdPassing.Send((int)_channel.Handle, "R"u8, -1, nonBlocking: false); // fails harmlessly once the channel is gone
    }

    /// <summary>No more sessions: ends those in progress when one failed, waits for them, and says how the backend
    /// exits.</summary>
    private int Finish()
    {
        lock (_gate)
        {
            if (_failed)
                foreach (var other in _open.Values)
                    ConnectionHost.ShutDown(other.Session.Socket);
            // A backend in doubt gives its other sessions a moment to notice their connection is gone (one may wait for
            // a lock the failed one left held), then exits anyway; otherwise, its sessions end when their clients do.
            long deadline = Environment.TickCount64 + (long)FailedDrain.TotalMilliseconds;
            while (_open.Count > 0)
            {
                long left = deadline - Environment.TickCount64;
                if (_failed && left <= 0)
                {
                    _log.Write(BackendLog.Warning, $"connection backend: {_open.Count} session(s) did not end within {FailedDrain.TotalSeconds:F0} s; exiting without them");
                    break;
                }
                Monitor.Wait(_gate, _failed ? (int)Math.Max(1, left) : Timeout.Infinite);
            }
            _context.Shmem.Slots.EndSession(_context.Slot, leaving: true);
            return _failed ? BackendHost.ExitFailure : BackendHost.ExitDone;
        }
    }

    private sealed record Open(ClientSession Session, CancellationTokenRegistration Wake);
}
