using Postmaster.Configuration;
using Postmaster.Logging;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Os;

namespace Postmaster.Supervision;

/// <summary>
/// The pool of pre-started, attached, parked backends (<c>backend_pool_size</c>): a start request takes a parked
/// member instead of starting a process. Rules: the pool is refilled up to its size while slots are left for the
/// configured workers waiting to start; a refill waits <see cref="RefillDelay"/> after a member was handed out (on 2
/// cores the new process would compete with the woken one); members that die while parked count as failures and the
/// refill backs off exponentially (<see cref="FailureDelayFirst"/> doubling to <see cref="FailureDelayMax"/>), so a
/// pool that cannot start never spins; a reload that lowers the size stops the idle members above it; a member whose
/// preloaded library changed on disk since it started is retired, never handed that library's work.
/// </summary>
internal sealed class BackendPool
{
    /// <summary>After a pool member is handed out, the refill waits this long.</summary>
    public static readonly TimeSpan RefillDelay = TimeSpan.FromMilliseconds(50);

    public static readonly TimeSpan FailureDelayFirst = TimeSpan.FromMilliseconds(100);
    public static readonly TimeSpan FailureDelayMax = TimeSpan.FromSeconds(30);

    /// <summary>How many of the most recently spawned dynamic entries new pool members preload.</summary>
    public const int RecentEntriesPreloaded = 4;

    private static readonly WorkerSpec PoolSpec = WorkerSpec.Dynamic("pool", "", "");

    private readonly ServerLog _log;
    private readonly IClock _clock;
    private readonly ChildTable _children;
    private readonly Func<Settings> _settings;
    private readonly Func<InstanceShmem> _shmem;
    private readonly Func<string> _dataDir;
    private readonly List<string> _recentEntries = new();
    private readonly List<int> _assignedNotWoken = new();
    private long _refillNotBefore;
    private int _failures;

    public BackendPool(ServerLog log, IClock clock, ChildTable children, Func<Settings> settings, Func<InstanceShmem> shmem,
        Func<string> dataDir)
    {
        _log = log;
        _clock = clock;
        _children = children;
        _settings = settings;
        _shmem = shmem;
        _dataDir = dataDir;
    }

    public int Idle => _children.All.Count(p => p.Pooled && !p.StopRequested);

    /// <summary>Takes a parked, attached, current member for <paramref name="spec"/> and posts the work to it (woken
    /// at once, or by <see cref="WakeAssigned"/> when <paramref name="wakeLater"/>); null when none can take it.</summary>
    public BackendProcess? Take(WorkerSpec spec, int restarts, bool wakeLater)
    {
        var slots = _shmem().Slots;
        string? library = LibraryPath(spec.Entry);
        LibraryIdentity? current = null;
        bool looked = false;
        LibraryIdentity? Current() // the file is looked at only once, and only when a member preloaded it
        {
            if (!looked)
                (current, looked) = (LibraryIdentity.Of(library!), true);
            return current;
        }
        foreach (var member in _children.All.Where(p => p.Pooled && !p.StopRequested).ToList())
        {
            if (slots.StateOf(member.Slot) != BackendSlotState.Active)
                continue; // not attached yet
            if (library is not null && member.Preloaded is { } pre && pre.TryGetValue(library, out var then) &&
                then != Current())
            {
                _log.Log($"retiring pool backend (PID {member.Pid}): worker library \"{library}\" changed on disk after it was preloaded");
                _children.Stop(member, Signals.SIGTERM);
                continue;
            }
            long gen = _children.NextGeneration();
            slots.PostAssignment(member.Slot, new PoolAssignment(spec.Name, spec.Entry, spec.Argument, gen), restarts, wake: !wakeLater);
            if (wakeLater)
                _assignedNotWoken.Add(member.Slot);
            member.Pooled = false;
            member.Spec = spec;
            member.Generation = gen;
            member.StartedAt = _clock.UtcNow;
            member.StartedAtMs = _clock.NowMs;
            _refillNotBefore = _clock.NowMs + (long)RefillDelay.TotalMilliseconds;
            _failures = 0;
            _log.Debug1($"{member.Describe()} started from the pool (PID {member.Pid}, slot {member.Slot})");
            if (!spec.IsStatic)
                Remember(spec.Entry);
            return member;
        }
        return null;
    }

    /// <summary>Records a dynamic entry started cold (new members preload it).</summary>
    public void Remember(string entry)
    {
        _recentEntries.Remove(entry);
        _recentEntries.Insert(0, entry);
        if (_recentEntries.Count > RecentEntriesPreloaded)
            _recentEntries.RemoveAt(RecentEntriesPreloaded);
    }

    /// <summary>Wakes the members <see cref="Take"/> handed work to (after the requesters were answered).</summary>
    public void WakeAssigned()
    {
        var slots = _shmem().Slots;
        foreach (int slot in _assignedNotWoken)
            slots.WakePooled(slot);
        _assignedNotWoken.Clear();
    }

    /// <summary>Starts members up to the pool size, leaving <paramref name="reservedSlots"/> free.</summary>
    public void Refill(int reservedSlots, IEnumerable<string> configuredEntries)
    {
        if (_clock.NowMs < _refillNotBefore)
            return;
        int target = _settings().BackendPoolSize;
        int idle = Idle;
        int free = _children.FreeSlots - reservedSlots;
        if (idle >= target || free <= 0)
            return;
        var preload = Preload(configuredEntries);
        var identities = Identities(preload);
        for (; idle < target && free > 0; idle++, free--)
        {
            var p = _children.Launch(PoolSpec, pooled: true, 0, preload, out string? error);
            if (p is null)
            {
                _log.Log($"could not start pool backend: {error}");
                Failed();
                return;
            }
            p.Preloaded = identities;
        }
    }

    /// <summary>A pool member exited while still parked: expected when we stopped it, else a failure (back-off).</summary>
    public void OnIdleExit(ReapedChild r)
    {
        if (!r.Process.StopRequested)
            Failed();
    }

    private void Failed()
    {
        _failures++;
        var delay = RestartBackoff.Delay(FailureDelayFirst, FailureDelayMax, _failures);
        _refillNotBefore = Math.Max(_refillNotBefore, _clock.NowMs + (long)delay.TotalMilliseconds);
        if (_failures > 1)
            _log.Log($"pool backends keep failing ({_failures} in a row); next start in {delay.TotalMilliseconds:0} ms");
    }

    /// <summary>The next time <see cref="Refill"/> has work (monotonic ms), or MaxValue.</summary>
    public long NextDeadline() => _refillNotBefore > _clock.NowMs && Idle < _settings().BackendPoolSize ? _refillNotBefore : long.MaxValue;

    /// <summary>Stops idle members above the pool size (a reload lowered it) or all of them (<paramref name="all"/>).</summary>
    public void Trim(bool all = false)
    {
        int keep = all ? 0 : _settings().BackendPoolSize;
        var idle = _children.All.Where(p => p.Pooled && !p.StopRequested).OrderByDescending(p => p.Slot).ToList();
        for (int i = 0; i < idle.Count - keep; i++)
            _children.Stop(idle[i], Signals.SIGTERM);
    }

    /// <summary>After a crash restart: a fresh start, no back-off carried over.</summary>
    public void Reinitialized()
    {
        _refillNotBefore = 0;
        _assignedNotWoken.Clear();
    }

    /// <summary>What a new pool member resolves while parked: backend_pool_preload, the configured workers' entries,
    /// and the entries spawned most recently.</summary>
    private List<string> Preload(IEnumerable<string> configuredEntries)
    {
        var entries = new List<string>(_settings().BackendPoolPreload);
        entries.AddRange(configuredEntries);
        entries.AddRange(_recentEntries);
        return entries.Distinct(StringComparer.Ordinal).ToList();
    }

    private Dictionary<string, LibraryIdentity> Identities(List<string> preload)
    {
        var map = new Dictionary<string, LibraryIdentity>(StringComparer.Ordinal);
        foreach (var entry in preload)
            if (LibraryPath(entry) is { } path && LibraryIdentity.Of(path) is { } id)
                map[path] = id;
        return map;
    }

    private string? LibraryPath(string entry)
    {
        if (LibraryIdentity.PathOf(entry) is not { } path)
            return null;
        try
        {
            return Path.GetFullPath(path, _dataDir());
        }
        catch (ArgumentException)
        {
            return null;
        }
    }
}
