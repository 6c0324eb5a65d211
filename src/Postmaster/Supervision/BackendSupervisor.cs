using Postmaster.Configuration;
using Postmaster.Logging;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Os;

namespace Postmaster.Supervision;

/// <summary>How a reaped backend ended, as the supervisor classifies it (PostgreSQL's bgworker rules).</summary>
public enum BackendEnd
{
    /// <summary>exit 0 and its slot released: the work is done.</summary>
    Done,

    /// <summary>exit 1 and its slot released: restart per policy.</summary>
    Failed,

    /// <summary>Any other status, a signal, or exit 0/1 with the slot still Active (the dead-man switch).</summary>
    Crashed,
}

/// <summary>
/// The postmaster's view of its backends: starts static workers (worker.NAME.*), dynamic ones on request, and a pool
/// of pre-started idle backends; reaps children by pid on SIGCHLD, classifies each exit, restarts per policy with
/// exponential backoff, and drives the backends through the three shutdown modes. Runs on the supervisor loop's
/// thread only. Slot bookkeeping is private (<see cref="_slotInUse"/>); shared slots are written, never trusted.
/// Crashes are handed to <see cref="CrashHandler"/> (crash recovery decides between reconcile and full restart).
/// </summary>
public sealed class BackendSupervisor
{
    private readonly ServerLog _log;
    private readonly BackendLauncher _launcher;
    private readonly Func<int, long, WorkerSpec, bool, BackendParameters> _parameters;
    private readonly Dictionary<int, BackendProcess> _byPid = new();
    private readonly Dictionary<string, StaticInstance> _static = new(StringComparer.Ordinal);
    private bool[] _slotInUse;
    private InstanceShmem _shmem;
    private Settings _settings;
    private long _generation;
    private ShutdownMode _shutdown = ShutdownMode.None;
    private long _killDeadline = long.MaxValue;
    private bool _holdStarts;
    private long _refillNotBefore;
    private readonly List<string> _recentDynamicEntries = new();
    private readonly List<int> _assignedNotWoken = new();

    /// <summary>How many of the most recently spawned dynamic entries new pool members preload.</summary>
    public const int RecentDynamicEntriesPreloaded = 4;

    /// <summary>After a pool member is handed out, the refill waits this long, so that the new process's start
    /// (tens of milliseconds of CPU on a 2-core machine) does not compete with the worker just woken.</summary>
    public static readonly TimeSpan PoolRefillDelay = TimeSpan.FromMilliseconds(50);

    public BackendSupervisor(ServerLog log, BackendLauncher launcher, InstanceShmem shmem, Settings settings,
        Func<int, long, WorkerSpec, bool, BackendParameters> parameters)
    {
        _log = log;
        _launcher = launcher;
        _shmem = shmem;
        _settings = settings;
        _parameters = parameters;
        _slotInUse = new bool[shmem.Slots.Count];
    }

    /// <summary>Called for every crash (after logging the exit, before the slot is freed). Returns true when the
    /// crash was dealt with locally (reconciled) and normal restart policy applies; false when it escalated.</summary>
    public Func<BackendProcess, ChildExit, bool>? CrashHandler { get; set; }

    public int Count => _byPid.Count;

    public IEnumerable<BackendProcess> Processes => _byPid.Values;

    public InstanceShmem Shmem => _shmem;

    private sealed class StaticInstance(WorkerSpec spec)
    {
        public WorkerSpec Spec { get; set; } = spec;
        public BackendProcess? Running { get; set; }
        public int Failures { get; set; }
        public int Restarts { get; set; }
        public long DueAt { get; set; }        // Environment.TickCount64; long.MaxValue = not to be started
        public bool Removed { get; set; }
    }

    /// <summary>Total static backends the settings ask for; must fit max_backends.</summary>
    public static int StaticCount(Settings s) => s.Workers.Values.Sum(w => w.Count);

    /// <summary>Registers the static workers of <paramref name="settings"/> (at start, and again on reload).</summary>
    public void ApplyConfiguration(Settings settings)
    {
        _settings = settings;
        var wanted = new Dictionary<string, WorkerSpec>(StringComparer.Ordinal);
        foreach (var w in settings.Workers.Values)
            foreach (var spec in WorkerSpec.FromSettings(w))
                wanted[spec.Name] = spec;
        foreach (var name in _static.Keys)
        {
            var inst = _static[name];
            if (wanted.TryGetValue(name, out var spec))
            {
                if (spec != inst.Spec)
                {
                    bool restartNeeded = spec.Entry != inst.Spec.Entry || spec.Argument != inst.Spec.Argument;
                    inst.Spec = spec;
                    if (restartNeeded && inst.Running is { } p)
                    {
                        _log.Log($"restarting background worker \"{name}\" because its configuration changed");
                        Stop(p, Signals.SIGTERM);
                        inst.DueAt = 0;
                    }
                }
                continue;
            }
            inst.Removed = true;
            inst.DueAt = long.MaxValue;
            if (inst.Running is { } running)
            {
                _log.Log($"stopping background worker \"{name}\": it was removed from the configuration");
                Stop(running, Signals.SIGTERM);
            }
        }
        foreach (var spec in wanted.Values)
        {
            if (_static.TryGetValue(spec.Name, out var existing) && !existing.Removed)
                continue;
            _static[spec.Name] = new StaticInstance(spec) { DueAt = 0 };
        }
        var gone = new List<string>();
        foreach (var name in _static.Keys)
        {
            var inst = _static[name];
            if (inst.Removed && inst.Running is null)
                gone.Add(name);
        }
        foreach (var name in gone)
            _static.Remove(name);
    }

    /// <summary>Starts whatever is due: static instances whose delay passed, and pool members up to the pool size.</summary>
    public void StartDue()
    {
        if (_shutdown != ShutdownMode.None || _holdStarts)
            return;
        long now = Environment.TickCount64;
        foreach (var (name, inst) in _static)
        {
            if (inst.Running is not null || inst.Removed || inst.DueAt > now)
                continue;
            var p = Start(inst.Spec, inst.Restarts, out string? error);
            if (p is null)
            {
                _log.Log($"could not start background worker \"{name}\": {error}");
                inst.Failures++;
                inst.DueAt = now + (long)RestartBackoff.Delay(inst.Spec.RestartDelay, inst.Spec.RestartDelayMax, inst.Failures).TotalMilliseconds;
                continue;
            }
            inst.Running = p;
        }
        RefillPool();
    }

    /// <summary>The next time <see cref="StartDue"/> or the SIGKILL deadline needs the loop (TickCount64), or MaxValue.</summary>
    public long NextDeadline()
    {
        long next = _killDeadline;
        if (_shutdown == ShutdownMode.None && !_holdStarts)
        {
            foreach (var inst in _static.Values)
                if (inst.Running is null && !inst.Removed)
                    next = Math.Min(next, inst.DueAt);
            if (_refillNotBefore > Environment.TickCount64)
                next = Math.Min(next, _refillNotBefore); // the deferred pool refill
        }
        return next;
    }

    /// <summary>Starts a dynamic worker now (spawn request), from the pool when one is parked.</summary>
    public BackendProcess? StartDynamic(string name, string entry, string argument, out string? error)
    {
        if (_shutdown != ShutdownMode.None || _holdStarts)
        {
            error = "the server is shutting down or restarting";
            return null;
        }
        if (BackendSlotArray.Validate(name, entry, argument) is { } bad)
        {
            error = bad;
            return null;
        }
        // The pool is refilled by the loop right after the answer is posted (StartDue), not before: a process
        // start here would delay the requester by its cost.
        var started = Start(WorkerSpec.Dynamic(name, entry, argument), 0, out error, wakeLater: true);
        if (started is not null)
        {
            _recentDynamicEntries.Remove(entry);
            _recentDynamicEntries.Insert(0, entry);
            if (_recentDynamicEntries.Count > RecentDynamicEntriesPreloaded)
                _recentDynamicEntries.RemoveAt(RecentDynamicEntriesPreloaded);
        }
        return started;
    }

    /// <summary>Wakes the pool members that <see cref="StartDynamic"/> handed work to. The loop calls it right after
    /// answering the requests: on 2 cores, a member woken first takes the CPU the requester needs for its answer.</summary>
    public void WakeAssigned()
    {
        foreach (int slot in _assignedNotWoken)
            _shmem.Slots.WakePooled(slot);
        _assignedNotWoken.Clear();
    }

    /// <summary>Stops one backend by pid or name with SIGTERM; it is not restarted. Returns the pids signalled.</summary>
    public IReadOnlyList<int> Terminate(string target)
    {
        var victims = int.TryParse(target, out int pid)
            ? _byPid.Values.Where(p => p.Pid == pid).ToList()
            : _byPid.Values.Where(p => !p.Pooled && (p.Spec.Name == target || p.Spec.ConfigName == target)).ToList();
        foreach (var p in victims)
        {
            if (p.Spec.ConfigName is { } cfg && _static.TryGetValue(p.Spec.Name, out var inst))
                inst.DueAt = long.MaxValue; // stays stopped until reload or restart
            Stop(p, Signals.SIGTERM);
        }
        return victims.Select(p => p.Pid).ToList();
    }

    private BackendProcess? Start(WorkerSpec spec, int restarts, out string? error, bool wakeLater = false)
    {
        error = null;
        var member = _byPid.Values.FirstOrDefault(p => p.Pooled && !p.StopRequested &&
                                                       _shmem.Slots.StateOf(p.Slot) == BackendSlotState.Active);
        if (member is not null)
        {
            long gen = ++_generation;
            _shmem.Slots.PostAssignment(member.Slot, new PoolAssignment(spec.Name, spec.Entry, spec.Argument, gen), restarts,
                wake: !wakeLater);
            if (wakeLater)
                _assignedNotWoken.Add(member.Slot);
            member.Pooled = false;
            member.Spec = spec;
            member.Generation = gen;
            member.StartedAt = DateTime.UtcNow;
            _refillNotBefore = Environment.TickCount64 + (long)PoolRefillDelay.TotalMilliseconds;
            _log.Debug1($"{member.Describe()} started from the pool (PID {member.Pid}, slot {member.Slot})");
            return member;
        }
        return Launch(spec, pooled: false, restarts, out error);
    }

    private BackendProcess? Launch(WorkerSpec spec, bool pooled, int restarts, out string? error)
    {
        int slot = Array.IndexOf(_slotInUse, false);
        if (slot < 0)
        {
            error = $"too many backends: all {_slotInUse.Length} slots are in use (max_backends = {_slotInUse.Length})";
            return null;
        }
        long gen = ++_generation;
        _shmem.Slots.Assign(slot, gen, spec.Name, spec.Entry, spec.Argument, pooled, restarts);
        int pid;
        try
        {
            var parameters = _parameters(slot, gen, spec, pooled);
            pid = _launcher.Launch(pooled ? parameters with { Preload = PoolPreload() } : parameters);
        }
        catch (OsCallException e)
        {
            _shmem.Slots.Free(slot);
            error = $"could not start backend process: {e.Message}";
            return null;
        }
        _slotInUse[slot] = true;
        var p = new BackendProcess(pid, slot, gen, spec, pooled, restarts);
        _byPid[pid] = p;
        _log.Debug1($"started {p.Describe()} (PID {pid}, slot {slot})");
        error = null;
        return p;
    }

    private void RefillPool()
    {
        if (_shutdown != ShutdownMode.None || _holdStarts || Environment.TickCount64 < _refillNotBefore)
            return;
        int idle = 0, free = 0, reserved = 0;
        foreach (var p in _byPid.Values)
            if (p.Pooled && !p.StopRequested)
                idle++;
        foreach (bool used in _slotInUse)
            if (!used)
                free++;
        foreach (var i in _static.Values)
            if (i.Running is null && !i.Removed && i.DueAt != long.MaxValue)
                reserved++;
        for (int n = idle; n < _settings.BackendPoolSize && free - reserved > 0; n++, free--)
        {
            if (Launch(PoolSpec, pooled: true, 0, out string? error) is null)
            {
                _log.Log($"could not start pool backend: {error}");
                return;
            }
        }
    }

    /// <summary>What a new pool member resolves while parked: backend_pool_preload, the configured workers' entries,
    /// and the entries spawned most recently.</summary>
    private List<string> PoolPreload()
    {
        var entries = new List<string>(_settings.BackendPoolPreload);
        foreach (var inst in _static.Values)
            if (!inst.Removed)
                entries.Add(inst.Spec.Entry);
        entries.AddRange(_recentDynamicEntries);
        return entries.Distinct(StringComparer.Ordinal).ToList();
    }

    private static readonly WorkerSpec PoolSpec = WorkerSpec.Dynamic("pool", "", "");

    /// <summary>Reaps every child that has exited (SIGCHLD, or the periodic backstop).</summary>
    public void ReapChildren()
    {
        foreach (int pid in _byPid.Keys.ToList())
        {
            ChildExit? exit;
            try
            {
                exit = ProcessSpawner.TryReap(pid);
            }
            catch (OsCallException e)
            {
                _log.Warning($"could not wait for backend process {pid}: {e.Message}");
                continue;
            }
            if (exit is { } x)
                OnExit(_byPid[pid], x);
        }
    }

    private void OnExit(BackendProcess p, ChildExit exit)
    {
        _byPid.Remove(p.Pid);
        bool stillActive = _shmem.Slots.StateOf(p.Slot) == BackendSlotState.Active;
        var end = exit.ExitCode switch
        {
            0 when !stillActive => BackendEnd.Done,
            1 when !stillActive => BackendEnd.Failed,
            _ => BackendEnd.Crashed,
        };
        string what = exit.Describe(p.Describe());
        if (end == BackendEnd.Crashed && exit.ExitCode is 0 or 1)
            what += " without releasing its slot";
        // We asked it to go (SIGTERM → 1, SIGQUIT → 2): worth a debug line only. Anything else is always logged.
        bool expected = p.StopRequested && exit.ExitCode is 0 or 1 or 2;
        if (end == BackendEnd.Done || expected)
            _log.Debug1(what);
        else
            _log.Log(what);

        bool handled = true;
        if (end == BackendEnd.Crashed && CrashHandler is { } onCrash)
            handled = onCrash(p, exit);
        if (handled)
            ReleaseSlot(p.Slot);
        if (p.Spec.ConfigName is null || !_static.TryGetValue(p.Spec.Name, out var inst) || inst.Running != p)
            return;
        inst.Running = null;
        if (inst.Removed)
        {
            _static.Remove(p.Spec.Name);
            return;
        }
        // Whoever stopped it set DueAt: 0 = start again with a changed spec, MaxValue = terminated; a shutdown or a
        // crash restart starts nothing (Reinitialized resets the due times afterwards).
        if (p.StopRequested || _shutdown != ShutdownMode.None || !handled)
            return;
        if (!inst.Spec.ShouldRestart(end == BackendEnd.Done))
        {
            inst.DueAt = long.MaxValue;
            return;
        }
        inst.Failures = end == BackendEnd.Done ? 0 : RestartBackoff.NextFailureCount(inst.Failures, DateTime.UtcNow - p.StartedAt, inst.Spec.StablePeriod);
        var delay = end == BackendEnd.Done ? inst.Spec.RestartDelay
            : RestartBackoff.Delay(inst.Spec.RestartDelay, inst.Spec.RestartDelayMax, inst.Failures);
        inst.Restarts++;
        inst.DueAt = Environment.TickCount64 + (long)delay.TotalMilliseconds;
        _log.Log($"background worker \"{p.Spec.Name}\" will be restarted in {delay.TotalMilliseconds:0} ms");
    }

    /// <summary>Frees a reaped backend's slot (and its lock-owner record, which a clean exit left empty).</summary>
    public void ReleaseSlot(int slot)
    {
        _shmem.Owners.ResetSlot(slot);
        _shmem.Slots.Free(slot);
        _slotInUse[slot] = false;
    }

    /// <summary>Begins (or escalates) a shutdown. Smart (PostgreSQL's): start nothing new and let dynamic workers (the
    /// "sessions") finish on their own; once none is left, the static workers and the pool get SIGTERM
    /// (<see cref="AdvanceSmartShutdown"/>). Fast sends SIGTERM to everyone, immediate SIGQUIT; both arm the SIGKILL
    /// deadline (shutdown_kill_timeout).</summary>
    public void BeginShutdown(ShutdownMode mode)
    {
        _shutdown = mode;
        foreach (var p in _byPid.Values.ToList())
        {
            if (mode == ShutdownMode.Immediate)
                Stop(p, Signals.SIGQUIT);
            else if (mode == ShutdownMode.Fast || p.Pooled)
                Stop(p, Signals.SIGTERM);
        }
        if (mode >= ShutdownMode.Fast)
            ArmKillDeadline();
        AdvanceSmartShutdown();
    }

    /// <summary>Smart shutdown, second phase: when no dynamic worker is left, stop the static workers.</summary>
    public void AdvanceSmartShutdown()
    {
        if (_shutdown != ShutdownMode.Smart || _byPid.Values.Any(p => !p.Pooled && !p.Spec.IsStatic))
            return;
        foreach (var p in _byPid.Values.Where(p => !p.StopRequested).ToList())
            Stop(p, Signals.SIGTERM);
    }

    /// <summary>Crash recovery: SIGQUIT everyone, stop starting anything, arm the SIGKILL deadline.</summary>
    public void QuitAllForCrash()
    {
        _holdStarts = true;
        foreach (var p in _byPid.Values.ToList())
            Stop(p, Signals.SIGQUIT);
        ArmKillDeadline();
    }

    private void ArmKillDeadline() =>
        _killDeadline = Math.Min(_killDeadline, Environment.TickCount64 + (long)_settings.ShutdownKillTimeout.TotalMilliseconds);

    /// <summary>After a full reinitialisation: a fresh shared memory, everyone may start again immediately.</summary>
    public void Reinitialized(InstanceShmem shmem)
    {
        _shmem = shmem;
        _slotInUse = new bool[shmem.Slots.Count];
        _holdStarts = false;
        _killDeadline = long.MaxValue;
        foreach (var inst in _static.Values)
        {
            inst.Running = null;
            if (inst.DueAt != long.MaxValue)
                inst.DueAt = 0;
        }
    }

    /// <summary>SIGKILL whatever is still alive once the deadline has passed.</summary>
    public void EnforceKillDeadline()
    {
        if (_byPid.Count == 0 || Environment.TickCount64 < _killDeadline)
            return;
        _log.Log("issuing SIGKILL to recalcitrant children");
        foreach (var p in _byPid.Values)
            ProcessControl.Signal(p.Pid, Signals.SIGKILL);
        _killDeadline = long.MaxValue;
    }

    public void ForwardSignal(int signal)
    {
        foreach (var p in _byPid.Values)
            ProcessControl.Signal(p.Pid, signal);
    }

    private void Stop(BackendProcess p, int signal)
    {
        p.StopRequested = true;
        ProcessControl.Signal(p.Pid, signal);
    }
}
