using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Postmaster.Logging;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Os;

namespace Postmaster.Connections;

/// <summary>What the acceptor does with connections, set by the supervisor from its state.</summary>
internal enum AcceptMode
{
    /// <summary>Before the first "ready": connections wait in the kernel's backlog (nothing is accepted yet).</summary>
    Starting,

    /// <summary>Normal operation: connections are handed to connection backends.</summary>
    Open,

    /// <summary>Crash recovery: connections are refused with "the database system is in recovery mode".</summary>
    Recovery,

    /// <summary>Shutdown: the listening sockets are closed, waiting connections refused, idle backends released.</summary>
    Closed,
}

/// <summary>
/// The postmaster's side of client connections (PostgreSQL's ServerLoop and BackendStartup), on a thread of its own so
/// the supervisor loop never waits for a client. New connections reach a backend one of two ways:
/// <list type="bullet">
/// <item><b>Tickets</b> (the common path): each idle connection backend gets the listening sockets once and a
/// standing ticket; a backend holding one accepts connections itself, one session after another (the prefork model:
/// the postmaster is not on a new connection's way), and shows each session in its slot. It wakes the acceptor only
/// when it leaves fewer accepting backends than the spares. The acceptor counts the accepting backends from the slots
/// (ticketed, not in a session) and listens only while there are none.</item>
/// <item><b>Hand-offs</b>: while no backend is accepting (all busy, none started yet, or at the limit), the acceptor
/// accepts, keeps the connection waiting until a backend is free (ticketed or not), and hands it over its channel
/// (SCM_RIGHTS), then closes its own copy; or refuses it.</item>
/// </list>
/// It never reads from or writes to a client, except one non-blocking write of a refusal line before closing one it
/// does not serve.
/// <para><b>Channels.</b> A connection backend connects to the acceptor's channel socket (an abstract Unix-domain
/// SOCK_SEQPACKET name with a random part, passed in the backend's argument) and is identified by its peer credentials:
/// only a process the supervisor started as a connection backend (<see cref="Expect"/>) and running as this user is
/// kept. It says "R" when it is ready for a session (after connecting, and after each session that ended cleanly); it
/// ends a backend's life by exiting, which closes the channel; the acceptor releases an idle backend by closing its
/// channel. At shutdown the listening sockets are shut down (shutdown(2): for the backends' copies too), so nobody
/// accepts any more.</para>
/// <para><b>Limits.</b> Backends in a session or holding a ticket plus connections waiting for a backend never exceed
/// <c>max_connections</c>: a connection beyond is refused with <c>connection_rejection_message</c>. The acceptor asks
/// the supervisor (<see cref="WantChanged"/>) for backends up to <c>spare_connection_backends</c> idle ones plus one per
/// waiting connection.</para>
/// </summary>
internal sealed class ConnectionAcceptor : IDisposable
{
    // Backend → acceptor: ready for a hand-off; took a connection and left fewer accepting backends than the spares
    // (a wake-up only: the session is in its slot); its accept failed, hand-offs only from now on.
    private const byte ReadyMessage = (byte)'R';
    private const byte AcceptedMessage = (byte)'A';
    private const byte NoTicketMessage = (byte)'N';

    // Multiplexing backend → acceptor: it takes no more sessions (its session limit); it exits after those it serves.
    private const byte LeavingMessage = (byte)'L';

    // Acceptor → backend: a session handed over (with its descriptor); a listening socket; a ticket (accept connections
    // yourself until it is withdrawn); the ticket withdrawn.
    private const byte SessionMessage = (byte)'S';
    private const byte ListenerMessage = (byte)'F';
    private const byte TicketMessage = (byte)'T';
    private const byte WithdrawMessage = (byte)'W';

    /// <summary>How often the acceptor looks at the slots while tickets are out, even when nothing woke it: the hint
    /// backends keep (accepting backends left) can be off after a kill, and this bounds what that can delay.</summary>
    private const int TicketCheckMs = 250;

    private readonly object _gate = new();
    private readonly ServerLog _log;
    private readonly Listeners _listeners;
    private readonly Socket _channelListener;
    private readonly WakeEvent _wake = new();
    private readonly Dictionary<int, (int Slot, int Capacity)> _expected = new(); // pid → slot: started, not connected yet
    private readonly List<(Socket Socket, int Pid, long Since)> _early = new(); // connected before Expect: parked briefly
    private readonly List<Channel> _channels = new();
    private readonly Queue<Waiting> _waiting = new();
    private readonly Thread _thread;
    private BackendSlotArray? _slots;
    private InstanceCounters? _counters; // written under _gate only
    private ConnectionTotals? _totals; // of the segment before a rebuild
    private long _uncountedAccepted, _uncountedRejected; // while there are no counters (during a rebuild)
    private AcceptMode _mode = AcceptMode.Starting; // Open once the supervisor is ready
    private int _maxConnections;
    private int _spare;
    private int _concurrent = 1; // concurrent_sessions_per_backend of backends started from now on
    private byte[] _rejection = [];
    private long _localSessionId; // session ids while there are no counters (never in practice: tests of the acceptor)
    private long _sessions; // handed over
    private long _channelsConnected;
    private bool _stop;
    private long _listenersPausedUntil;

    /// <summary>How long a channel from a process not (yet) expected is kept before it is closed.</summary>
    private const long EarlyChannelLimitMs = 5_000;

    public ConnectionAcceptor(ServerLog log, Listeners listeners)
    {
        _log = log;
        _listeners = listeners;
        ChannelName = $"\0postmaster.{ProcessControl.CurrentPid}.{Convert.ToHexString(RandomNumberGenerator.GetBytes(8))}";
        _channelListener = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        _channelListener.Bind(new UnixDomainSocketEndPoint(ChannelName));
        _channelListener.Listen(512);
        _channelListener.Blocking = false;
        _thread = new Thread(Run) { Name = "acceptor", IsBackground = true };
    }

    /// <summary>The channel socket's abstract name (leading NUL), for the backends' argument.</summary>
    public string ChannelName { get; }

    /// <summary>Called (on the acceptor's thread) when <see cref="Wanted"/> may have grown.</summary>
    public Action? WantChanged { get; set; }

    /// <summary>Connections the acceptor accepted itself, refused (any reason), and sessions it handed out, since start
    /// (connections backends accept themselves are counted in the instance counters).</summary>
    public long Accepted { get; private set; }

    public long Rejected { get; private set; }

    public long Sessions => Interlocked.Read(ref _sessions);

    public void Start() => _thread.Start();

    /// <summary>The supervisor's settings and shared memory (null while it is being rebuilt: nothing is written then).</summary>
    public void Configure(int maxConnections, int spare, string rejection, BackendSlotArray? slots, InstanceCounters? counters,
        int concurrent = 1)
    {
        lock (_gate)
        {
            if (_counters is not null && counters is null)
                _totals = _counters.SnapshotConnections(); // the segment is about to be rebuilt: keep its totals
            else if (counters is not null && _counters is null && _totals is { } totals)
            {
                // A rebuilt segment gets the totals of the one before, and what was counted meanwhile.
                counters.RestoreConnections(totals with
                {
                    Accepted = totals.Accepted + _uncountedAccepted, Rejected = totals.Rejected + _uncountedRejected,
                });
                _uncountedAccepted = _uncountedRejected = 0;
            }
            _counters = counters;
            counters?.PublishSpareTarget(spare);
            _maxConnections = maxConnections;
            _spare = spare;
            _concurrent = Math.Max(1, concurrent);
            _rejection = Encoding.UTF8.GetBytes(rejection + "\r\n");
            _slots = slots;
        }
        _wake.Signal();
    }

    /// <summary>
    /// Just before a rebuild, once every backend of the old segment has exited: reads the totals again from the old
    /// segment's counters (<paramref name="old"/>, null when they are damaged), so what backends counted after
    /// <see cref="Configure"/> took the first snapshot (while they were being stopped: a ticketed backend may still
    /// accept, and take a session id) is carried over too, and no session id is issued twice. Each total is the larger
    /// of the two snapshots: a damaged segment can make it wrong, never go back.
    /// </summary>
    public void RefreshTotals(InstanceCounters? old)
    {
        if (old is null)
            return;
        lock (_gate)
        {
            if (_counters is not null)
                return; // not between two segments
            var t = old.SnapshotConnections();
            _totals = _totals is { } before
                ? new ConnectionTotals(Math.Max(before.Accepted, t.Accepted), Math.Max(before.Rejected, t.Rejected),
                    Math.Max(before.Direct, t.Direct), Math.Max(before.LastSessionId, t.LastSessionId))
                : t;
        }
    }

    public void SetMode(AcceptMode mode)
    {
        lock (_gate)
        {
            if (_mode == mode || _mode == AcceptMode.Closed)
                return;
            _mode = mode;
        }
        _wake.Signal();
    }

    /// <summary>How many more connection backends the supervisor should start now.</summary>
    public int Wanted()
    {
        lock (_gate)
            return _mode == AcceptMode.Open ? Math.Max(0, WantedLocked()) : 0;
    }

    /// <summary>The supervisor started <paramref name="pid"/> in <paramref name="slot"/> as a connection backend that
    /// serves <paramref name="capacity"/> sessions at once.</summary>
    public void Expect(int pid, int slot, int capacity = 1)
    {
        lock (_gate)
        {
            _expected[pid] = (slot, capacity);
            int k = _early.FindIndex(e => e.Pid == pid);
            if (k >= 0) // it connected before the supervisor got to say so (a cold start that was quick)
            {
                var early = _early[k];
                _early.RemoveAt(k);
                _expected.Remove(pid);
                _channels.Add(new Channel(early.Socket, pid, slot, capacity));
                Interlocked.Increment(ref _channelsConnected);
            }
        }
        _wake.Signal();
    }

    /// <summary>The supervisor could not start a connection backend: connections waiting beyond the backends that are
    /// coming or idle are refused (with <paramref name="why"/> in the log), with <c>connection_rejection_message</c> when
    /// <paramref name="failed"/> is false (no slot: the same as too many clients), else with "could not start a backend
    /// for the connection" (PostgreSQL's "could not fork new process for connection").</summary>
    public void CouldNotStart(string why, bool failed = false)
    {
        lock (_gate)
        {
            // Backends still starting, connected ones not ready yet and idle ones all take a waiting connection (the
            // next dispatch hands it over): only what is beyond them is refused.
            int coming = ExpectedPlaces() + FreePlaces();
            int refused = 0;
            while (_waiting.Count > coming)
            {
                Refuse(_waiting.Dequeue().Client, failed ? StartFailed : _rejection);
                refused++;
            }
            if (refused > 0)
                _log.Log($"refused {refused} connection(s): no connection backend could be started: {why}",
                    detail: $"Connection backends: {_expected.Count} starting, {_channels.Count(c => !c.Idle && !c.Busy)} connecting, "
                        + $"{_channels.Count(c => c.Idle)} idle, {_channels.Count(c => c.Busy)} serving.");
        }
    }

    /// <summary>Channels connected since start: backends that got as far as loading their worker and connecting.</summary>
    public long ChannelsConnected => Interlocked.Read(ref _channelsConnected);

    /// <summary>A child was reaped. True when it was a connection backend that exited before it connected its channel
    /// (it could not load the connection worker, or died starting).</summary>
    public bool ProcessGone(int pid)
    {
        lock (_gate)
        {
            bool neverConnected = _expected.Remove(pid);
            // Its channel goes now, not when the acceptor reads its end: the slot may already be another process's.
            foreach (var c in _channels.Where(c => c.Pid == pid).ToList())
                Drop(c);
            foreach (var e in _early.Where(e => e.Pid == pid).ToList())
            {
                e.Socket.Dispose();
                _early.Remove(e);
            }
            _wake.Signal();
            return neverConnected;
        }
    }

    public void Dispose()
    {
        lock (_gate)
            _stop = true;
        _wake.Signal();
        if (_thread.IsAlive)
            _thread.Join();
        lock (_gate)
        {
            foreach (var w in _waiting)
                Refuse(w.Client, ShuttingDown);
            _waiting.Clear();
            foreach (var c in _channels)
                c.Socket.Dispose();
            _channels.Clear();
        }
        _channelListener.Dispose();
        _listeners.Dispose();
        _wake.Dispose();
        _log.Debug1($"connections since start: {Accepted} accepted, {Rejected} refused, {Sessions} sessions handed to backends");
    }

    private static readonly byte[] ShuttingDown = Encoding.UTF8.GetBytes("the database system is shutting down\r\n");
    private static readonly byte[] InRecovery = Encoding.UTF8.GetBytes("the database system is in recovery mode\r\n");
    private static readonly byte[] StartFailed = Encoding.UTF8.GetBytes("could not start a backend for the connection\r\n");

    private void Run()
    {
        var entries = new List<PollEntry>();
        var owners = new List<object?>();
        bool listening = true;
        int accepting = 0;
        bool ticketsOut = false;
        bool polledListeners = false;
        while (true)
        {
            entries.Clear();
            owners.Clear();
            lock (_gate)
            {
                if (_stop)
                    return;
                if (_mode == AcceptMode.Closed && listening)
                {
                    listening = false;
                    CloseForShutdown();
                }
                if (_mode == AcceptMode.Recovery)
                {
                    while (_waiting.Count > 0)
                        Refuse(_waiting.Dequeue().Client, InRecovery);
                    foreach (var c in _channels.ToList())
                        Drop(c); // every backend is being stopped; the slots are rebuilt
                }
                long now = Environment.TickCount64;
                foreach (var e in _early.Where(e => now - e.Since > EarlyChannelLimitMs).ToList())
                {
                    e.Socket.Dispose(); // never expected: not a connection backend of this postmaster
                    _early.Remove(e);
                }
                bool paused = now < _listenersPausedUntil;
                entries.Add(new PollEntry(_wake.Fd));
                owners.Add(null);
                // While idle backends hold tickets they accept new connections themselves: the acceptor listens only
                // when none does (then it accepts, and hands over or refuses).
                accepting = Accepting();
                _counters?.PublishAccepting(accepting);
                ticketsOut = _channels.Any(c => c.Ticket);
                polledListeners = listening && _mode != AcceptMode.Starting && !paused && accepting == 0;
                if (polledListeners)
                {
                    foreach (var l in _listeners.All)
                    {
                        entries.Add(new PollEntry((int)l.Socket.Handle));
                        owners.Add(l);
                    }
                }
                entries.Add(new PollEntry((int)_channelListener.Handle));
                owners.Add(_channelListener);
                foreach (var c in _channels)
                {
                    entries.Add(new PollEntry((int)c.Socket.Handle));
                    owners.Add(c);
                }
            }
            var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(entries);
            try
            {
                Poller.Wait(span, _early.Count > 0 || Environment.TickCount64 < _listenersPausedUntil ? 100 : ticketsOut ? TicketCheckMs : -1);
            }
            catch (Exception e)
            {
                _log.Log($"acceptor: {e.Message}");
                Thread.Sleep(100);
                continue;
            }
            bool wanted;
            lock (_gate)
            {
                // The channels first, then the listeners: a session that ended ("ready") frees its place before the
                // connections that came meanwhile are counted against max_connections.
                for (int i = 0; i < span.Length; i++)
                    if (span[i].IsReadable && owners[i] is Channel first)
                        ReadChannel(first);
                for (int i = 0; i < span.Length; i++)
                {
                    if (!span[i].IsReadable)
                        continue;
                    switch (owners[i])
                    {
                        case null:
                            _wake.Drain();
                            break;
                        case Listener l when listening && _mode != AcceptMode.Closed && Accepting() == 0:
                            AcceptFrom(l);
                            break;
                        case Socket s when ReferenceEquals(s, _channelListener):
                            AcceptChannels();
                            break;
                        case Channel:
                            break; // read above
                    }
                }
                Dispatch();
                if (!polledListeners && listening && _mode is AcceptMode.Open or AcceptMode.Recovery
                    && Environment.TickCount64 >= _listenersPausedUntil)
                {
                    // Backends were accepting, so the listeners were not polled; a connection can still be waiting in
                    // the backlog (its EPOLLEXCLUSIVE wake-up went to a backend that then had to read its channel, or
                    // died): after a wake-up ("A") and at each look while tickets are out, take what is pending.
                    CheckListenersNow();
                    Dispatch();
                }
                // Only after the hand-offs: a connection an idle backend took needs nothing from the supervisor, so
                // the common case (a spare was idle) never wakes the supervisor loop.
                wanted = _mode == AcceptMode.Open && WantedLocked() > 0;
            }
            if (wanted)
                WantChanged?.Invoke();
        }
    }

    /// <summary>Accepts what is pending on the listeners now (a zero-timeout poll). Caller holds <see cref="_gate"/>.</summary>
    private void CheckListenersNow()
    {
        Span<PollEntry> entries = stackalloc PollEntry[Math.Min(_listeners.All.Count, 16)];
        for (int i = 0; i < entries.Length; i++)
            entries[i] = new PollEntry((int)_listeners.All[i].Socket.Handle);
        if (Poller.Wait(entries, 0) <= 0)
            return;
        for (int i = 0; i < entries.Length; i++)
            if (entries[i].IsReadable)
                AcceptFrom(_listeners.All[i]);
    }

    /// <summary>Spares missing plus one per waiting connection, capped at max_connections + spares backends in all
    /// (may be negative). Caller holds <see cref="_gate"/>.</summary>
    private int WantedLocked()
    {
        // In session places: a backend serving one session at a time is one place, a multiplexing one as many as it
        // serves at once. Free: idle, or connected and about to say ready, and ticketed ones not in a session.
        int expected = ExpectedPlaces();
        int need = _spare + _waiting.Count - FreePlaces() - expected;
        int room = _maxConnections + _spare - _channels.Sum(c => c.Capacity) - expected;
        int places = Math.Min(need, room);
        return places <= 0 ? places : (places + _concurrent - 1) / _concurrent; // backends started from now on
    }

    /// <summary>Session places of backends started but not connected yet. Caller holds <see cref="_gate"/>.</summary>
    private int ExpectedPlaces()
    {
        int n = 0;
        foreach (var e in _expected.Values)
            n += e.Capacity;
        return n;
    }

    /// <summary>Session places free in connected backends: idle ones (or about to say ready), ticketed ones not in a
    /// session, and what multiplexing ones have left. Caller holds <see cref="_gate"/>.</summary>
    private int FreePlaces()
    {
        int n = 0;
        foreach (var c in _channels)
        {
            if (c.Multiplexing)
                n += c.Leaving ? 0 : c.Capacity - c.Sessions;
            else if ((!c.Ticket && !c.Busy) || IsAccepting(c))
                n++;
        }
        return n;
    }

    /// <summary>Sessions in progress (handed over, or accepted by a ticketed backend): a ticketed backend that is free
    /// would take a new connection itself, so its ticket is that connection's place, not another one's.</summary>
    private int InProgress() => _channels.Sum(c => c.Multiplexing ? c.Sessions : c.Busy || (c.Ticket && InSession(c)) ? 1 : 0);

    /// <summary>Sessions a channel's backend serves or has a place held for (a ticket, a withdrawal it has not
    /// answered): what counts against max_connections.</summary>
    private static int Held(Channel c) => c.Multiplexing ? c.Sessions : c.Busy || c.Ticket ? 1 : 0;

    /// <summary>Accepts what is pending on <paramref name="l"/> (a bounded batch, so one busy listener cannot starve the
    /// others) into the waiting queue, refusing what is over the limit.</summary>
    private void AcceptFrom(Listener l)
    {
        bool channelsRead = false;
        for (int n = 0; n < 64; n++)
        {
            Socket client;
            try
            {
                client = l.Socket.Accept(); // non-blocking listener; accept4(SOCK_CLOEXEC)
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock)
            {
                break;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionAborted)
            {
                continue; // the client gave up before it was accepted
            }
            catch (SocketException e)
            {
                // Out of descriptors or buffers (EMFILE, ENFILE, ENOBUFS): the listener stays readable, so stop polling
                // it for a moment instead of spinning; PostgreSQL's "could not accept new connection".
                if (Environment.TickCount64 >= _listenersPausedUntil + 1000)
                    _log.Log($"could not accept new connection on {l.Description}: {e.Message}");
                _listenersPausedUntil = Environment.TickCount64 + 100;
                break;
            }
            Accepted++;
            if (_counters is { } counters)
                counters.CountAccepted(direct: false);
            else
                _uncountedAccepted++;
            int busy = InProgress();
            if (_mode == AcceptMode.Recovery)
            {
                Refuse(client, InRecovery);
                continue;
            }
            if (busy + _waiting.Count >= _maxConnections && !channelsRead && _channels.Any(c => c.Multiplexing))
            {
                // Sessions of multiplexing backends are counted until their "ready" is read: read what the channels
                // hold now (a client that closed one connection and opened another is not refused for its own), once
                // per batch, so a flood of connections at the limit costs no receive per channel each.
                channelsRead = true;
                foreach (var c in _channels.ToList())
                    ReadChannel(c);
                busy = InProgress();
            }
            if (busy + _waiting.Count >= _maxConnections)
            {
                Refuse(client, _rejection);
                continue;
            }
            _waiting.Enqueue(new Waiting(client, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), PeerText.Of(client)));
        }
    }

    private void Refuse(Socket client, byte[] line)
    {
        Rejected++;
        if (_counters is { } counters)
            counters.CountRejected();
        else
            _uncountedRejected++;
        try
        {
            client.Blocking = false;
            client.Send(line, SocketFlags.None, out _);
            client.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        client.Dispose();
    }

    private void AcceptChannels()
    {
        Span<byte> cred = stackalloc byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        for (int n = 0; n < 64; n++)
        {
            Socket s;
            try
            {
                s = _channelListener.Accept();
            }
            catch (SocketException)
            {
                break;
            }
            int pid = 0;
            uint uid = uint.MaxValue;
            try
            {
                if (s.GetRawSocketOption(1 /* SOL_SOCKET */, 17 /* SO_PEERCRED */, cred) == 12)
                {
                    pid = BitConverter.ToInt32(cred);
                    uid = BitConverter.ToUInt32(cred[4..]);
                }
            }
            catch (SocketException)
            {
            }
            if (uid != ProcessControl.EffectiveUid)
            {
                s.Dispose(); // not a connection backend this postmaster started
                continue;
            }
            if (!_expected.Remove(pid, out var expected))
            {
                // Started a moment ago and quicker than the supervisor's Expect: parked until then (or until the limit).
                if (_early.Count < 64)
                    _early.Add((s, pid, Environment.TickCount64));
                else
                    s.Dispose();
                continue;
            }
            s.Blocking = false;
            _channels.Add(new Channel(s, pid, expected.Slot, expected.Capacity));
            Interlocked.Increment(ref _channelsConnected);
        }
    }

    private void ReadChannel(Channel c)
    {
        Span<byte> buf = stackalloc byte[256];
        while (true)
        {
            int n;
            try
            {
                n = FdPassing.Receive((int)c.Socket.Handle, buf, out int fd, nonBlocking: true);
                FdPassing.Close(fd); // backends never send descriptors
            }
            catch (Exception)
            {
                n = 0;
            }
            if (n == -11) // EAGAIN: all read
                return;
            if (n <= 0)
            {
                Drop(c);
                return;
            }
            switch (buf[0])
            {
                case ReadyMessage when n == 1 && c.Multiplexing: // at first, then after each session that ended cleanly
                    if (c.Idle)
                        c.Sessions = Math.Max(0, c.Sessions - 1);
                    c.Idle = true;
                    c.Busy = c.Sessions > 0;
                    if (_mode == AcceptMode.Closed && c.Sessions == 0)
                    {
                        Drop(c);
                        return;
                    }
                    break;
                case LeavingMessage when n == 1 && c.Multiplexing:
                    c.Leaving = true; // its sessions still count until it says they ended, or exits
                    break;
                case ReadyMessage when n == 1: // idle after a hand-off (a ticketed backend accepts again), a withdrawal, or at first
                    c.Busy = false;
                    c.Idle = !c.Ticket;
                    if (_mode == AcceptMode.Closed)
                    {
                        Drop(c); // shutting down: release it
                        return;
                    }
                    break;
                case AcceptedMessage when n == 1:
                    break; // a wake-up: the backends accepting are few now (counted from the slots below)
                case NoTicketMessage when n == 1:
                    // It cannot accept (its accept failed, or it has no counters): hand-offs only for this backend, and
                    // it is ready for one, unless one is on its way (then its "ready" follows that session).
                    c.Ticket = false;
                    c.Direct = false;
                    c.Idle = !c.Busy;
                    break;
                default:
                    _log.Log($"acceptor: connection backend {c.Pid} sent an unexpected message ({n} bytes, kind {buf[0]}); its channel is closed");
                    Drop(c);
                    return;
            }
        }
    }

    private void Drop(Channel c)
    {
        _channels.Remove(c);
        c.Socket.Dispose();
    }

    /// <summary>Hands waiting connections to idle backends, oldest first; then gives each idle backend left a ticket,
    /// as far as <c>max_connections</c> allows: backends in a session or holding a ticket, plus connections waiting,
    /// never pass it (a ticketed backend serves one session at a time, so its sessions never do either). When a reload
    /// lowered the limit below that, tickets of idle backends are withdrawn.</summary>
    private void Dispatch()
    {
        if (_mode != AcceptMode.Open)
            return;
        while (_waiting.Count > 0)
        {
            // An idle backend for it: one waiting for hand-offs, or a ticketed one that is free, claimed in its slot
            // first (so that it does not accept one itself meanwhile); it takes the hand-off on its channel, and says
            // ready after it.
            var c = _channels.FirstOrDefault(x => x.Idle && !x.Ticket && !x.Multiplexing) ?? ClaimAccepting()
                ?? _channels.FirstOrDefault(x => x.Multiplexing && x.Idle && !x.Leaving && x.Sessions < x.Capacity);
            if (c is null)
                return;
            var w = _waiting.Peek();
            long id = _counters?.TakeSessionId() ?? ++_localSessionId;
            var payload = new byte[17 + Encoding.UTF8.GetByteCount(w.Peer)];
            payload[0] = SessionMessage;
            BitConverter.TryWriteBytes(payload.AsSpan(1), id);
            BitConverter.TryWriteBytes(payload.AsSpan(9), w.AcceptedUnixMs);
            Encoding.UTF8.GetBytes(w.Peer, payload.AsSpan(17));
            int errno = FdPassing.Send((int)c.Socket.Handle, payload, (int)w.Client.Handle);
            if (errno != 0)
            {
                Drop(c); // the backend is gone (or its channel is stuck): the connection waits for another one
                continue;
            }
            _waiting.Dequeue();
            w.Client.Dispose(); // the backend has its own descriptor now (it shows the session in its slot)
            if (c.Multiplexing)
                c.Sessions++;
            else
                c.Idle = false;
            c.Busy = true;
            Interlocked.Increment(ref _sessions);
        }
        if (_listeners.All.Count == 0)
            return;
        int used = _channels.Sum(Held);
        foreach (var c in _channels.Where(c => c.Idle && !c.Ticket && c.Direct).ToList())
        {
            if (used >= _maxConnections)
                break;
            if (!c.HasListeners && !SendListeners(c))
                continue;
            if (FdPassing.Send((int)c.Socket.Handle, [TicketMessage], -1) != 0)
            {
                Drop(c);
                continue;
            }
            c.Ticket = true;
            c.Idle = false;
            used++;
        }
        foreach (var c in _channels.Where(IsAccepting).ToList())
        {
            if (used <= _maxConnections)
                break;
            if (FdPassing.Send((int)c.Socket.Handle, [WithdrawMessage], -1) != 0)
            {
                Drop(c);
                continue;
            }
            c.Ticket = false; // it says ready when it is idle (at once, or after a session it just accepted)
            c.Busy = true;
            used--;
        }
    }

    /// <summary>The backend of a ticketed channel serves a session now (its slot says so; false without slots).</summary>
    private bool InSession(Channel c) => _slots is { } slots && slots.InSession(c.Slot);

    /// <summary>A ticketed backend that is free for a hand-off, claimed in its slot (null when there is none).</summary>
    private Channel? ClaimAccepting()
    {
        foreach (var c in _channels)
            if (c.Ticket && !c.Busy && _slots is { } slots && slots.TryClaimSession(c.Slot, BackendSlotArray.SessionClaimedForHandOff))
                return c;
        return null;
    }

    /// <summary>A ticketed backend not in a session (neither one it accepted nor one handed to it): it accepts new
    /// connections itself.</summary>
    private bool IsAccepting(Channel c) => c.Ticket && !c.Busy && !InSession(c);

    /// <summary>The backends accepting new connections themselves. Caller holds <see cref="_gate"/>.</summary>
    private int Accepting()
    {
        int n = 0;
        foreach (var c in _channels)
            if (IsAccepting(c))
                n++;
        return n;
    }

    /// <summary>Sends every listening socket to a backend, once, before its first ticket; false when its channel failed
    /// (it is dropped).</summary>
    private bool SendListeners(Channel c)
    {
        foreach (var l in _listeners.All)
        {
            if (FdPassing.Send((int)c.Socket.Handle, [ListenerMessage], (int)l.Socket.Handle) != 0)
            {
                Drop(c);
                return false;
            }
        }
        c.HasListeners = true;
        return true;
    }

    private void CloseForShutdown()
    {
        _listeners.StopListening(); // for the backends' copies too: nobody accepts from here on
        foreach (var l in _listeners.All)
        {
            // A Unix listener keeps its queue after shutdown(2) while backends hold copies: those get the reason too.
            // (Not on a socket systemd passed: its queue waits for the next start.)
            for (int n = 0; n < 1024 && !l.Passed; n++)
            {
                try
                {
                    Refuse(l.Socket.Accept(), ShuttingDown);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
                {
                    break;
                }
            }
            l.Socket.Dispose();
        }
        while (_waiting.Count > 0)
            Refuse(_waiting.Dequeue().Client, ShuttingDown);
        foreach (var c in _channels.Where(c => c.Idle || c.Ticket).ToList())
            Drop(c); // a ticketed one in a session serves it to the end, then finds its channel closed and exits
    }

    private sealed class Channel(Socket socket, int pid, int slot, int capacity)
    {
        public Socket Socket { get; } = socket;
        public int Pid { get; } = pid;
        public int Slot { get; } = slot;

        /// <summary>Sessions its backend serves at once (concurrent_sessions_per_backend when it was started).</summary>
        public int Capacity { get; } = Math.Max(1, capacity);

        /// <summary>It serves several sessions at once: it gets hand-offs only (no ticket), up to
        /// <see cref="Capacity"/>, and says "ready" after each session that ended.</summary>
        public bool Multiplexing => Capacity > 1;

        /// <summary>A multiplexing backend's sessions in progress (handed over, not said ended).</summary>
        public int Sessions { get; set; }

        /// <summary>A multiplexing backend takes no more sessions (its session limit).</summary>
        public bool Leaving { get; set; }

        /// <summary>Waiting for a hand-off (said "ready", holds no ticket); a multiplexing backend: said ready once.</summary>
        public bool Idle { get; set; }

        /// <summary>Serving a handed-over session (ticketed or not), or about to say ready after a withdrawal.</summary>
        public bool Busy { get; set; }

        /// <summary>Holds a ticket: accepts connections itself, one session at a time, until it is withdrawn; whether it
        /// is in a session now, its slot says (<see cref="InSession"/>).</summary>
        public bool Ticket { get; set; }

        /// <summary>It has the listening sockets.</summary>
        public bool HasListeners { get; set; }

        /// <summary>False once its accept failed, and for a multiplexing backend: it gets hand-offs only.</summary>
        public bool Direct { get; set; } = capacity <= 1;
    }

    private sealed record Waiting(Socket Client, long AcceptedUnixMs, string Peer);
}
