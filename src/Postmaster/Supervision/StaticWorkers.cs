using Postmaster.Configuration;
using Postmaster.Logging;
using Postmaster.Shmem.Backends;

namespace Postmaster.Supervision;

/// <summary>
/// The configured workers (<c>worker.NAME.*</c>, one instance per process of <c>count</c>): when each starts, how an
/// exit is answered (restart policy, exponential back-off, the give-up limit <c>restart_limit</c>), what a reload
/// changes, and what an operator did (terminate → stopped, start-worker → started again). Every instance is always in
/// one <see cref="WorkerRunState"/>, which <see cref="Snapshot"/> publishes for <c>status</c>. Starting a process is
/// not done here: <see cref="StartDue"/> asks the caller (the pool or a cold start). Runs on the supervisor loop only.
/// </summary>
internal sealed class StaticWorkers
{
    private readonly ServerLog _log;
    private readonly IClock _clock;
    private readonly Dictionary<string, Instance> _instances = new(StringComparer.Ordinal);
    private readonly List<string> _order = new();

    public StaticWorkers(ServerLog log, IClock clock)
    {
        _log = log;
        _clock = clock;
    }

    /// <summary>Something visible changed since the last <see cref="Snapshot"/>.</summary>
    public bool Dirty { get; private set; } = true;

    public int Count => _instances.Count;

    private sealed class Instance(WorkerSpec spec)
    {
        public WorkerSpec Spec { get; set; } = spec;
        public BackendProcess? Running { get; set; }
        public WorkerRunState State { get; set; } = WorkerRunState.Pending;
        public int Failures { get; set; }
        public int Restarts { get; set; }
        public long DueAtMs { get; set; }          // when Backoff/Pending: start at or after this (monotonic ms)
        public DateTime? NextStartAt { get; set; } // the same, as wall time for status
        public string LastExit { get; set; } = "";
        public DateTime? LastExitAt { get; set; }
        public bool Removed { get; set; }
        public bool OperatorStop { get; set; }     // terminate: Stopped when it has exited
        public bool RestartNow { get; set; }       // its configuration changed: start again as soon as it exited
        public WorkerSpec? ReAddAs { get; set; }   // removed, then configured again before its process exited
    }

    /// <summary>Total static backends the settings ask for; must fit max_backends.</summary>
    public static int CountOf(Settings s) => s.Workers.Values.Sum(w => w.Count);

    /// <summary>The entries of the configured workers (what new pool members preload).</summary>
    public IEnumerable<string> Entries => _instances.Values.Where(i => !i.Removed).Select(i => i.Spec.Entry);

    /// <summary>Instances that will start soon and need a slot: the pool leaves room for them.</summary>
    public int WaitingForSlot => _instances.Values.Count(i => i.Running is null && !i.Removed && i.State is WorkerRunState.Pending or WorkerRunState.Backoff);

    /// <summary>Registers the configured workers of <paramref name="settings"/> (at start, and again on reload):
    /// new ones are pending, removed ones are stopped (<paramref name="stop"/>: SIGTERM), changed ones restart if what
    /// they run changed.</summary>
    public void Apply(Settings settings, Action<BackendProcess> stop)
    {
        var wanted = new Dictionary<string, WorkerSpec>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var w in settings.Workers.Values)
            foreach (var spec in WorkerSpec.FromSettings(w))
            {
                wanted[spec.Name] = spec;
                order.Add(spec.Name);
            }
        foreach (var (name, inst) in _instances.ToList())
        {
            if (wanted.TryGetValue(name, out var spec))
            {
                if (spec != inst.Spec)
                {
                    bool restartNeeded = spec.Entry != inst.Spec.Entry || spec.Argument != inst.Spec.Argument;
                    inst.Spec = spec;
                    if (restartNeeded && inst.Running is { } p)
                    {
                        _log.Log($"restarting background worker \"{name}\" because its configuration changed");
                        inst.RestartNow = true;
                        stop(p);
                    }
                    else if (restartNeeded && inst.State is WorkerRunState.Failed or WorkerRunState.Backoff)
                    {
                        // A changed entry deserves a fresh try: the old one may have been the cause.
                        Pend(inst, 0);
                        inst.Failures = 0;
                    }
                    Dirty = true;
                }
                continue;
            }
            if (inst.Removed)
                continue;
            inst.Removed = true;
            Dirty = true;
            if (inst.Running is { } running)
            {
                _log.Log($"stopping background worker \"{name}\": it was removed from the configuration");
                stop(running);
            }
            else
            {
                _instances.Remove(name);
            }
        }
        foreach (var name in order)
        {
            if (_instances.TryGetValue(name, out var existing) && !existing.Removed)
                continue;
            if (existing is not null)
            {
                existing.ReAddAs = wanted[name]; // removed and still running: re-added once it has exited (see OnExit)
                continue;
            }
            _instances[name] = new Instance(wanted[name]);
            Dirty = true;
        }
        _order.Clear();
        _order.AddRange(order);
    }

    /// <summary>Starts the instances that are due. <paramref name="start"/> starts one process (spec, restarts so far)
    /// and returns it, or null with the reason.</summary>
    public void StartDue(Func<WorkerSpec, int, (BackendProcess? Process, string? Error)> start)
    {
        long now = _clock.NowMs;
        foreach (var name in _order)
        {
            if (!_instances.TryGetValue(name, out var inst) || inst.Running is not null || inst.Removed)
                continue;
            if (inst.State is not (WorkerRunState.Pending or WorkerRunState.Backoff) || inst.DueAtMs > now)
                continue;
            var (p, error) = start(inst.Spec, inst.Restarts);
            Dirty = true;
            if (p is null)
            {
                _log.Log($"could not start background worker \"{name}\": {error}");
                RecordFailure(inst, $"could not start: {error}", ranForMs: -1);
                continue;
            }
            inst.Running = p;
            inst.State = WorkerRunState.Running;
            inst.NextStartAt = null;
        }
    }

    /// <summary>The next time <see cref="StartDue"/> has work (monotonic ms), or MaxValue.</summary>
    public long NextDeadline()
    {
        long next = long.MaxValue;
        foreach (var inst in _instances.Values)
            if (inst.Running is null && !inst.Removed && inst.State is WorkerRunState.Pending or WorkerRunState.Backoff)
                next = Math.Min(next, inst.DueAtMs);
        return next;
    }

    /// <summary>Whether <paramref name="p"/> runs one of the configured instances.</summary>
    public bool Owns(BackendProcess p) =>
        p.Spec.IsStatic && _instances.TryGetValue(p.Spec.Name, out var inst) && inst.Running == p;

    /// <summary>A reaped process of a configured instance. <paramref name="restartable"/> is false when the exit is
    /// part of a shutdown or a full crash restart (nothing restarts; a crash restart starts everything again).</summary>
    public void OnExit(ReapedChild r, string exitText, bool restartable)
    {
        var p = r.Process;
        if (!_instances.TryGetValue(p.Spec.Name, out var inst) || inst.Running != p)
            return;
        inst.Running = null;
        inst.LastExit = exitText;
        inst.LastExitAt = _clock.UtcNow;
        Dirty = true;
        if (inst.Removed)
        {
            _instances.Remove(p.Spec.Name);
            if (_order.Contains(p.Spec.Name))
                ReAdd(p.Spec.Name, inst.ReAddAs ?? inst.Spec);
            return;
        }
        if (inst.OperatorStop)
        {
            inst.OperatorStop = false;
            inst.RestartNow = false; // a reload's restart while it was being stopped: the operator's stop wins
            inst.State = WorkerRunState.Stopped;
            _log.Log($"background worker \"{inst.Spec.Name}\" stopped; it is not restarted until \"postmaster start-worker\"");
            return;
        }
        if (inst.RestartNow)
        {
            inst.RestartNow = false;
            inst.Failures = 0;
            Pend(inst, 0);
            return;
        }
        if (!restartable)
        {
            Pend(inst, 0); // started again after the crash restart; a shutdown starts nothing
            return;
        }
        long ranFor = _clock.NowMs - p.StartedAtMs;
        if (r.End == BackendEnd.Done)
        {
            inst.Failures = 0;
            if (!inst.Spec.ShouldRestart(cleanDone: true))
            {
                inst.State = WorkerRunState.Done;
                return;
            }
            inst.Restarts++;
            Backoff(inst, inst.Spec.RestartDelay);
            return;
        }
        if (!inst.Spec.ShouldRestart(cleanDone: false))
        {
            inst.Failures = RestartBackoff.NextFailureCount(inst.Failures, TimeSpan.FromMilliseconds(ranFor), inst.Spec.StablePeriod);
            inst.State = WorkerRunState.Failed;
            return;
        }
        RecordFailure(inst, exitText, ranFor);
    }

    private void ReAdd(string name, WorkerSpec spec)
    {
        // Removed by a reload and added again before its old process had exited.
        _instances[name] = new Instance(spec);
    }

    /// <summary>Consecutive failures are never restarted faster than this, whatever restart_delay says (0 included):
    /// a worker that cannot start must not make the supervisor spin.</summary>
    public static readonly TimeSpan FailureDelayFloor = TimeSpan.FromMilliseconds(10);

    /// <param name="ranForMs">How long the failed run lasted; -1 when no process was started (never "stable").</param>
    private void RecordFailure(Instance inst, string what, long ranForMs)
    {
        inst.Failures = ranForMs < 0
            ? inst.Failures + 1
            : RestartBackoff.NextFailureCount(inst.Failures, TimeSpan.FromMilliseconds(ranForMs), inst.Spec.StablePeriod);
        inst.LastExit = what;
        inst.LastExitAt ??= _clock.UtcNow;
        int limit = inst.Spec.RestartLimit;
        if (limit > 0 && inst.Failures > limit)
        {
            inst.State = WorkerRunState.Failed;
            inst.NextStartAt = null;
            _log.Log($"background worker \"{inst.Spec.Name}\" failed {inst.Failures} times in a row; giving up",
                detail: $"Last failure: {what}.",
                hint: $"Fix the cause, then start it again with \"postmaster start-worker {inst.Spec.Name}\" (restart_limit = {limit}).");
            return;
        }
        inst.Restarts++;
        var delay = RestartBackoff.Delay(inst.Spec.RestartDelay, inst.Spec.RestartDelayMax, inst.Failures);
        if (inst.Failures > 1 && delay < FailureDelayFloor)
        {
            var cap = FailureDelayFloor * 64 > inst.Spec.RestartDelayMax ? FailureDelayFloor * 64 : inst.Spec.RestartDelayMax;
            delay = RestartBackoff.Delay(FailureDelayFloor, cap, inst.Failures - 1); // 10 ms, 20 ms, ... up to the cap
        }
        Backoff(inst, delay);
    }

    private void Backoff(Instance inst, TimeSpan delay)
    {
        inst.State = WorkerRunState.Backoff;
        inst.DueAtMs = _clock.NowMs + (long)delay.TotalMilliseconds;
        inst.NextStartAt = _clock.UtcNow + delay;
        _log.Log($"background worker \"{inst.Spec.Name}\" will be restarted in {delay.TotalMilliseconds:0} ms");
    }

    private void Pend(Instance inst, long dueAtMs)
    {
        inst.State = WorkerRunState.Pending;
        inst.DueAtMs = dueAtMs;
        inst.NextStartAt = null;
    }

    /// <summary>terminate: the instance running in <paramref name="p"/> is stopped by an operator.</summary>
    public void MarkOperatorStop(BackendProcess p)
    {
        if (_instances.TryGetValue(p.Spec.Name, out var inst) && inst.Running == p)
            inst.OperatorStop = true;
    }

    /// <summary>terminate of a name whose instances do not run (backoff or pending): stop them from starting.
    /// Returns how many instances were stopped that way.</summary>
    public int StopIdle(string target)
    {
        int n = 0;
        foreach (var inst in Matching(target))
        {
            if (inst.Running is not null || inst.State is not (WorkerRunState.Backoff or WorkerRunState.Pending))
                continue;
            inst.State = WorkerRunState.Stopped;
            inst.NextStartAt = null;
            Dirty = true;
            n++;
        }
        return n;
    }

    /// <summary>start-worker NAME: starts stopped, failed or done instances again now (failures forgotten), and makes
    /// waiting ones start now. Null when something was started; else why not.</summary>
    public string? StartAgain(string target)
    {
        var matching = Matching(target).ToList();
        if (matching.Count == 0)
            return _instances.Count == 0
                ? $"no background worker \"{target}\" is configured (none is)"
                : $"no background worker \"{target}\" is configured (configured: {string.Join(", ", _order)})";
        int changed = 0;
        foreach (var inst in matching)
        {
            if (inst.Running is not null)
                continue;
            inst.Failures = 0;
            inst.RestartNow = false;
            Pend(inst, 0);
            changed++;
        }
        Dirty |= changed > 0;
        return changed > 0 ? null : $"background worker \"{target}\" is already running";
    }

    /// <summary>Instances of worker NAME (all of its count) or the single instance NAME.N.</summary>
    private IEnumerable<Instance> Matching(string target) =>
        _instances.Values.Where(i => !i.Removed && (i.Spec.Name == target || i.Spec.ConfigName == target));

    /// <summary>After a full reinitialisation: nothing runs; everything that should run starts again at once.</summary>
    public void Reinitialized()
    {
        foreach (var (name, inst) in _instances.ToList())
        {
            if (inst.Removed)
            {
                // Its process is gone with everyone else's: forget it, or start it afresh if a reload re-added it.
                _instances.Remove(name);
                if (_order.Contains(name))
                    ReAdd(name, inst.ReAddAs ?? inst.Spec);
                continue;
            }
        }
        foreach (var inst in _instances.Values)
        {
            inst.Running = null;
            inst.OperatorStop = false;
            inst.RestartNow = false;
            if (inst.State is WorkerRunState.Running or WorkerRunState.Backoff or WorkerRunState.Pending)
                Pend(inst, 0);
        }
        Dirty = true;
    }

    /// <summary>Every instance in configuration order, for the shared status table.</summary>
    public List<WorkerStatus> Snapshot()
    {
        Dirty = false;
        var list = new List<WorkerStatus>(_instances.Count);
        foreach (var name in _order.Concat(_instances.Keys.Where(k => !_order.Contains(k))))
        {
            if (!_instances.TryGetValue(name, out var i))
                continue;
            list.Add(new WorkerStatus(name, i.State, i.Running?.Pid ?? 0, i.Restarts, i.Failures,
                i.NextStartAt is { } at ? new DateTimeOffset(at).ToUnixTimeMilliseconds() : 0,
                i.LastExitAt is { } ex ? new DateTimeOffset(ex).ToUnixTimeMilliseconds() : 0, i.LastExit));
        }
        return list;
    }
}
