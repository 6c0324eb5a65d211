namespace Postmaster.Backend;

/// <summary>Why a backend was asked to stop: it decides the one FATAL line the backend logs for it.</summary>
internal enum StopReason
{
    /// <summary>Not asked to stop.</summary>
    None = 0,

    /// <summary>SIGTERM from the postmaster (or an operator): "due to administrator command".</summary>
    AdministratorCommand = 1,

    /// <summary>The postmaster died: "due to unexpected postmaster exit". Nothing else is logged as FATAL afterwards.</summary>
    PostmasterDeath = 2,
}

/// <summary>
/// "This backend is to stop" (SIGTERM, or the postmaster's death), set once and seen two ways: a latch that
/// <see cref="Postmaster.Workers.WorkerContext.WaitUntilStopping"/> sleeps on, and a cancellation token for workers
/// that want one (<see cref="Token"/>). The latch is a monitor and the token source is created on first use: an idle
/// worker then needs neither a wait handle nor a CancellationTokenSource, which would cost it thread-local state,
/// JIT compilation and about 0.5 MB of memory.
/// </summary>
internal sealed class StopRequest
{
    private readonly object _gate = new();
    private bool _set;
    private StopReason _reason;
    private CancellationTokenSource? _source;

    public bool IsSet
    {
        get
        {
            lock (_gate)
                return _set;
        }
    }

    /// <summary>The first reason given (<see cref="StopReason.None"/> while not set). A later request with another
    /// reason does not change it, except that the postmaster's death overrides an administrator command: after it the
    /// backend has nobody to report to, and its one FATAL line says so.</summary>
    public StopReason Reason
    {
        get
        {
            lock (_gate)
                return _reason;
        }
    }

    /// <summary>Cancelled when the stop is requested (at once if it already was).</summary>
    public CancellationToken Token
    {
        get
        {
            lock (_gate)
            {
                if (_source is null)
                {
                    _source = new CancellationTokenSource();
                    if (_set)
                        _source.Cancel();
                }
                return _source.Token;
            }
        }
    }

    /// <summary>Records <paramref name="reason"/> as the reason the backend reports, without waking anyone yet (so
    /// the caller can log it before the worker, woken by <see cref="Set"/>, ends the process). Returns true for the
    /// call that decided the reason: the first one, or the first report of the postmaster's death, which overrides an
    /// administrator command. Only that caller logs.</summary>
    public bool Claim(StopReason reason)
    {
        lock (_gate)
        {
            if (_reason == StopReason.None || (reason == StopReason.PostmasterDeath && _reason != StopReason.PostmasterDeath))
            {
                _reason = reason;
                return true;
            }
            return false;
        }
    }

    /// <summary>Requests the stop (<see cref="Claim"/>s <paramref name="reason"/> first) and wakes every waiter.
    /// Returns what <see cref="Claim"/> returned.</summary>
    public bool Set(StopReason reason = StopReason.AdministratorCommand)
    {
        bool decided = Claim(reason);
        CancellationTokenSource? source;
        lock (_gate)
        {
            if (_set)
                return decided;
            _set = true;
            Monitor.PulseAll(_gate);
            source = _source;
        }
        source?.Cancel(); // outside the monitor: callbacks run here
        return decided;
    }

    /// <summary>Waits until set or <paramref name="timeout"/> passes (Timeout.InfiniteTimeSpan: no limit); returns
    /// whether it is set.</summary>
    public bool Wait(TimeSpan timeout)
    {
        long deadline = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        lock (_gate)
        {
            while (!_set)
            {
                long left = deadline - Environment.TickCount64;
                if (left <= 0)
                    return false;
                Monitor.Wait(_gate, deadline == long.MaxValue ? Timeout.Infinite : (int)Math.Min(left, int.MaxValue));
            }
            return true;
        }
    }
}
