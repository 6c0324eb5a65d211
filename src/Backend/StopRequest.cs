namespace Postmaster.Backend;

/// <summary>
/// "This backend is to stop" (SIGTERM, or the postmaster's death), set once and seen two ways: a latch that
/// <see cref="Postmaster.Workers.WorkerContext.WaitUntilStopping"/> sleeps on, and a cancellation token for workers
/// that want one (<see cref="Token"/>). The latch is a monitor and the token source is created on first use: an idle
/// worker then needs neither a wait handle nor a CancellationTokenSource, which would cost it thread-local state,
/// JIT compilation and about 0.5 MB of memory.
/// </summary>
public sealed class StopRequest
{
    private readonly object _gate = new();
    private bool _set;
    private CancellationTokenSource? _source;

    public bool IsSet
    {
        get
        {
            lock (_gate)
                return _set;
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

    public void Set()
    {
        CancellationTokenSource? source;
        lock (_gate)
        {
            if (_set)
                return;
            _set = true;
            Monitor.PulseAll(_gate);
            source = _source;
        }
        source?.Cancel(); // outside the monitor: callbacks run here
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
