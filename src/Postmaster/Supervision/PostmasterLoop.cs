using System.Collections.Concurrent;
using Postmaster.Configuration;
using Postmaster.Connections;
using Postmaster.Daemon;
using Postmaster.Logging;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;

namespace Postmaster.Supervision;

/// <summary>
/// The supervisor: one loop on one thread takes events (signals, the request doorbell, deadlines), turns them into
/// <see cref="PmInput"/>s for <see cref="PmStateMachine"/>, and performs the actions of each transition. It is the only
/// place that changes the state, writes the lock file's status and sends systemd notifications. The concerns below it
/// are separate classes: <see cref="ChildTable"/> (processes and slots), <see cref="StaticWorkers"/> (configured
/// workers, restart policy, back-off, give-up), <see cref="BackendPool"/> (parked backends), <see cref="CrashRecovery"/>
/// (reconcile or full restart, the crash-loop breaker). Everything read from shared memory is validated where it is
/// read; what fails validation leads to a full crash restart. An exception escaping an event handler is a bug: it is
/// logged with its stack trace and ends in an orderly immediate shutdown (the affected request fails first).
/// </summary>
internal sealed class PostmasterLoop
{
    /// <summary>How often the loop verifies that postmaster.pid is still ours (PostgreSQL: once a minute).</summary>
    public static readonly TimeSpan LockFileRecheckInterval = TimeSpan.FromSeconds(60);

    /// <summary>While children exist, how often they are reaped even without SIGCHLD (a backstop, never the main path).</summary>
    public static readonly TimeSpan ReapBackstopInterval = TimeSpan.FromSeconds(1);

    /// <summary>How long the supervisor may wait for the DSM control lock while reconciling (then: full restart).</summary>
    public static readonly TimeSpan ReconcileLockTimeout = TimeSpan.FromMilliseconds(200);

    private readonly BlockingCollection<PmEvent> _queue;
    private readonly ServerLog _log;
    private readonly DataDirLockFile _lockFile;
    private readonly LiveSettings _settings;
    private readonly InstanceMemory _memory;
    private readonly RequestDoorbell _doorbell;
    private readonly IClock _clock;
    private readonly ChildTable _children;
    private readonly StaticWorkers _workers;
    private readonly BackendPool _pool;
    private readonly CrashRecovery _crash;
    private readonly Action _onReady;
    private readonly ConnectionAcceptor? _acceptor;
    private PmSnapshot _state = PmSnapshot.Initial;
    private string? _statusWord;
    private long _killDeadline = long.MaxValue;
    private readonly SystemdNotify _systemd;
    private long _nextWatchdog; // monotonic ms; WATCHDOG=1 is due (only with a systemd watchdog)
    private int _connectionFailures; // connection backends in a row that exited before they connected
    private long _connectionsConnectedAtFailure;
    private long _connectionRetryAt; // no connection backend is started before this (monotonic ms)
    private long _nextLockCheck;
    private bool _restartForCorruption;
    private bool _readyOnce;
    private bool _pendingImmediate; // the lock file could not be written: shut down after the current transition

    public PostmasterLoop(BlockingCollection<PmEvent> queue, ServerLog log, DataDirLockFile lockFile, LiveSettings settings,
        InstanceMemory memory, RequestDoorbell doorbell, IProcessOps ops, IClock clock, ConnectionAcceptor? acceptor, Action onReady,
        SystemdNotify? systemd = null)
    {
        _systemd = systemd ?? SystemdNotify.None;
        _queue = queue;
        _log = log;
        _lockFile = lockFile;
        _settings = settings;
        _memory = memory;
        _doorbell = doorbell;
        _clock = clock;
        _onReady = onReady;
        _children = new ChildTable(log, ops, clock, () => _memory.Shmem)
        {
            Parameters = (slot, gen, spec, pooled, preload) =>
                BackendParametersFactory.For(_settings.Current, _memory, slot, gen, spec, pooled, preload),
        };
        _workers = new StaticWorkers(log, clock);
        _pool = new BackendPool(log, clock, _children, () => _settings.Current, () => _memory.Shmem, () => _memory.DataDir);
        _crash = new CrashRecovery(() => _settings.Current, clock);
        _acceptor = acceptor;
        if (acceptor is not null)
            acceptor.WantChanged = () => queue.TryAdd(new PmEvent.ConnectionsWanted());
    }

    public PmSnapshot State => _state;

    /// <summary>Runs until the state machine reaches <see cref="PmState.Exit"/>; returns the process exit code.</summary>
    public int Run()
    {
        _nextLockCheck = _clock.NowMs + (long)LockFileRecheckInterval.TotalMilliseconds;
        long nextReap = _clock.NowMs + (long)ReapBackstopInterval.TotalMilliseconds;
        Guarded("start-up", () =>
        {
            PublishCounters();
            _workers.Apply(_settings.Current, StopBackend);
            // A shutdown signal that arrived while shared memory was being built is acted on before "ready".
            var early = new List<PmEvent>();
            while (_queue.TryTake(out var queued))
                early.Add(queued);
            foreach (var ev in early.OfType<PmEvent.ShutdownRequested>())
                Handle(ev);
            foreach (var ev in early.Where(e => e is not PmEvent.ShutdownRequested))
                _queue.TryAdd(ev);
            StartDoorbell();
            ConfigureAcceptor();
            _acceptor?.Start();
            Transition(PmInput.StartupDone, "shared memory is ready");
        });
        while (_state.State != PmState.Exit)
        {
            long now = _clock.NowMs;
            long due = Math.Min(_nextLockCheck, NextDeadline());
            if (_children.Count > 0)
                due = Math.Min(due, nextReap);
            int wait = (int)Math.Clamp(due - now, 0, int.MaxValue);
            if (_queue.TryTake(out var ev, wait))
                Guarded(ev.GetType().Name, () => Handle(ev));
            now = _clock.NowMs;
            if (now >= nextReap)
            {
                nextReap = now + (long)ReapBackstopInterval.TotalMilliseconds;
                Guarded("reap", ReapChildren);
            }
            Guarded("periodic checks", () =>
            {
                if (_systemd.WatchdogIntervalMs > 0 && _clock.NowMs >= _nextWatchdog)
                {
                    // From the loop itself: a supervisor loop that hangs stops these, and systemd's watchdog acts.
                    _systemd.Watchdog();
                    _nextWatchdog = _clock.NowMs + _systemd.WatchdogIntervalMs;
                }
                if (_clock.NowMs >= _nextLockCheck)
                    RecheckLockFile();
                EnforceKillDeadline();
                Settle();
            });
        }
        _doorbell.Stop();
        if (_state.Abnormal)
        {
            _log.Log("abnormal postmaster shutdown");
            return PostmasterServer.ExitFailure;
        }
        return PostmasterServer.ExitOk;
    }

    private long NextDeadline()
    {
        long next = _killDeadline;
        if (_systemd.WatchdogIntervalMs > 0)
            next = Math.Min(next, _nextWatchdog);
        if (PmStateMachine.StartsBackends(_state))
            next = Math.Min(next, Math.Min(_workers.NextDeadline(), _pool.NextDeadline()));
        if (_connectionRetryAt > _clock.NowMs && _acceptor?.Wanted() > 0)
            next = Math.Min(next, _connectionRetryAt);
        return next;
    }

    /// <summary>Runs one handler; an exception is a bug: logged with its stack trace, then an orderly immediate
    /// shutdown (which still removes shared memory and the lock file). Corrupt shared memory is not a bug: a full
    /// crash restart.</summary>
    private void Guarded(string what, Action action)
    {
        try
        {
            action();
        }
        catch (ShmemCorruptException e)
        {
            try
            {
                ShmemInvalid($"{e.Message}{(e.Detail is null ? "" : $" ({e.Detail})")}");
            }
            catch (Exception again)
            {
                Fault(what, again);
            }
        }
        catch (Exception e)
        {
            Fault(what, e);
        }
    }

    /// <summary>An exception escaped a handler: logged with its stack trace, then an orderly immediate shutdown; if
    /// even that throws, the loop ends at once (the caller still removes shared memory and the lock file).</summary>
    private void Fault(string what, Exception e)
    {
        bool os = e is ShmemException; // an OS call failed (the message names it): not a bug in the supervisor
        _log.Write(Severity.Log, os
                ? $"could not continue while handling {what}: {e.Message}"
                : $"internal error in the supervisor while handling {what}: {e.GetType().Name}: {e.Message}",
            detail: os ? (e as ShmemException)?.Detail : e.ToString(),
            hint: os ? "The server shuts down." : "This is a bug; please report it with this log. The server shuts down.");
        try
        {
            _state = _state with { Abnormal = true };
            Transition(PmInput.ImmediateShutdown, "internal error");
        }
        catch (Exception again)
        {
            _log.Write(Severity.Log, $"internal error while shutting down after an internal error: {again.Message}", detail: again.ToString());
            _children.KillAll();
            _state = _state with { State = PmState.Exit, Abnormal = true };
        }
    }

    private void StartDoorbell()
    {
        _doorbell.Start(_memory.Shmem.Requests);
        // A requester that rang between "listening" and the thread's first read of the bell skipped SIGUSR1: look.
        _queue.TryAdd(new PmEvent.PmSignal());
    }

    private void Handle(PmEvent ev)
    {
        switch (ev)
        {
            case PmEvent.ShutdownRequested s:
                Transition(s.Mode switch
                {
                    ShutdownMode.Smart => PmInput.SmartShutdown,
                    ShutdownMode.Fast => PmInput.FastShutdown,
                    _ => PmInput.ImmediateShutdown,
                }, "signal");
                break;
            case PmEvent.ReloadRequested:
                Reload();
                ConfigureAcceptor();
                break;
            case PmEvent.ChildSignal:
                ReapChildren();
                break;
            case PmEvent.PmSignal:
                ServeRequests();
                break;
            case PmEvent.ConnectionsWanted:
                break; // Settle, after every event, starts what the acceptor wants
            default:
                throw new InvalidOperationException($"unknown supervisor event {ev}");
        }
    }

    // ---- the transition function and its actions ----

    /// <summary>The only place the state changes: computes the step, logs it at DEBUG1, performs its actions in order,
    /// and updates the lock file's status and systemd.</summary>
    private void Transition(PmInput input, string why)
    {
        var before = _state;
        var step = PmStateMachine.Next(before, input);
        if (!step.Changed(before) && step.Actions == PmAction.None)
            return;
        if (step.Next.Shutdown > before.Shutdown)
            _log.Log(step.Next.Shutdown switch
            {
                ShutdownMode.Smart => "received smart shutdown request",
                ShutdownMode.Fast => "received fast shutdown request",
                _ => "received immediate shutdown request",
            });
        _state = step.Next;
        _log.Debug1($"supervisor state {before.State} → {_state.State} on {input} ({why}); shutdown {_state.Shutdown}, " +
                    $"abnormal {_state.Abnormal}, actions {step.Actions}");
        var a = step.Actions;
        if (a.HasFlag(PmAction.StopPool))
            _pool.Trim(all: true);
        if (a.HasFlag(PmAction.TerminateAll))
            _children.StopAll(Signals.SIGTERM);
        if (a.HasFlag(PmAction.QuitAll))
            _children.StopAll(Signals.SIGQUIT);
        if (a.HasFlag(PmAction.ArmKillDeadline))
            _killDeadline = Math.Min(_killDeadline, _clock.NowMs + (long)_settings.Current.ShutdownKillTimeout.TotalMilliseconds);
        PublishStatus(before.State);
        _acceptor?.SetMode(_state.State switch
        {
            PmState.Run => AcceptMode.Open,
            PmState.Starting => AcceptMode.Starting,
            PmState.CrashWaitBackends or PmState.Reinit => AcceptMode.Recovery,
            _ => AcceptMode.Closed,
        });
        if (_state.State is PmState.CrashWaitBackends or PmState.Reinit)
            _acceptor?.Configure(_settings.Current.MaxConnections, _settings.Current.SpareConnectionBackends,
                _settings.Current.ConnectionRejectionMessage, null, null,
                _settings.Current.ConcurrentSessionsPerBackend); // the slots are about to be rebuilt
        if (a.HasFlag(PmAction.Reinitialize))
            Reinitialize();
        if (a.HasFlag(PmAction.StartBackends) && !_pendingImmediate)
            StartDue();
        if (_pendingImmediate)
        {
            _pendingImmediate = false;
            _state = _state with { Abnormal = true };
            Transition(PmInput.ImmediateShutdown, "the lock file cannot be written");
        }
    }

    private void PublishStatus(PmState before)
    {
        string word = PmStateMachine.StatusWord(_state.State);
        if (word != _statusWord)
        {
            _statusWord = word; // once: a failing write is not retried by every later transition
            try
            {
                _lockFile.SetStatus(word);
            }
            catch (Exception e) when (e is ShmemException or IOException or UnauthorizedAccessException)
            {
                _log.Log($"could not write the status to lock file \"{_lockFile.Path}\": {e.Message}");
                if (_state.Shutdown < ShutdownMode.Immediate && _state.State != PmState.Exit)
                {
                    _log.Log("performing immediate shutdown because data directory lock file is invalid");
                    _pendingImmediate = true;
                }
            }
        }
        if (before == _state.State)
            return;
        switch (_state.State)
        {
            case PmState.Run when !_readyOnce:
                _readyOnce = true;
                _onReady();
                _systemd.Ready(ProcessControl.CurrentPid, "ready");
                break;
            case PmState.Run:
                _systemd.Status("ready");
                break;
            case PmState.SmartWaitSessions or PmState.WaitBackends when before is not (PmState.SmartWaitSessions or PmState.WaitBackends):
                _systemd.Stopping(_state.State == PmState.SmartWaitSessions
                    ? "smart shutdown: waiting for sessions to end"
                    : $"{_state.Shutdown.ToString().ToLowerInvariant()} shutdown: waiting for backends to exit");
                break;
            case PmState.WaitBackends:
                _systemd.Status($"{_state.Shutdown.ToString().ToLowerInvariant()} shutdown: waiting for backends to exit");
                break;
            case PmState.CrashWaitBackends:
                _systemd.Status("a backend crashed: waiting for every backend to exit before reinitializing");
                break;
            case PmState.Reinit:
                _systemd.Status("reinitializing shared memory after a crash");
                break;
            case PmState.Exit when before is not (PmState.SmartWaitSessions or PmState.WaitBackends):
                _systemd.Stopping("shutting down");
                break;
        }
    }

    /// <summary>After every event: the conditions the state machine waits for, until nothing changes.</summary>
    private void Settle()
    {
        for (int i = 0; i < 8; i++)
        {
            var before = _state;
            if (_state.State == PmState.SmartWaitSessions && !_children.All.Any(IsSession))
                Transition(PmInput.NoSessions, "no dynamic worker is left");
            if (_children.Count == 0)
                Transition(PmInput.NoChildren, "no backend is left");
            if (_state == before)
                break;
        }
        if (PmStateMachine.StartsBackends(_state))
            StartDue();
        if (_workers.Dirty)
            PublishWorkers();
    }

    private void StopBackend(BackendProcess p) => _children.Stop(p, Signals.SIGTERM);

    private static bool IsSession(BackendProcess p) => !p.Pooled && !p.Spec.IsStatic;

    private void EnforceKillDeadline()
    {
        if (_children.Count == 0 || _clock.NowMs < _killDeadline)
            return;
        _log.Log("issuing SIGKILL to recalcitrant children");
        _children.KillAll();
        _killDeadline = long.MaxValue;
    }

    private void Reinitialize()
    {
        bool corruption = _restartForCorruption;
        _restartForCorruption = false;
        if (_crash.WhyNotReinitialize(corruption) is { } stop)
        {
            _log.Log(stop, hint: corruption ? null : "A backend keeps crashing; see the log lines above for the first failure.");
            Transition(PmInput.ReinitFailed, stop);
            return;
        }
        _log.Log("all backends terminated; reinitializing");
        if (_acceptor is not null && _memory.IsMapped)
            _acceptor.RefreshTotals(OldCounters()); // what the stopped backends counted last
        _doorbell.Stop(); // its word is in the segment about to be destroyed
        try
        {
            _memory.Reinitialize(_settings.Current.LogMinMessages);
            if (ShmemProblem() is { } bad)
                throw new ShmemCorruptException($"shared memory is invalid right after it was created: {bad}");
            _crash.Restarted(corruption);
            PublishCounters(); // before the transition says ready: a reader that sees ready sees this restart
        }
        catch (ShmemException e)
        {
            _log.Log($"could not reinitialize shared memory: {e.Message}", e.Detail, e.Hint);
            Transition(PmInput.ReinitFailed, "shared memory could not be rebuilt");
            return;
        }
        _children.Reset();
        _workers.Reinitialized();
        _pool.Reinitialized();
        _killDeadline = long.MaxValue;
        StartDoorbell();
        ConfigureAcceptor(); // before the transition that starts backends: the acceptor records sessions in the new slots
        Transition(PmInput.ReinitDone, "shared memory was rebuilt");
    }

    /// <summary>Shared memory failed validation: a full crash restart, logged with what was wrong.</summary>
    private void ShmemInvalid(string problem)
    {
        if (_state.State is PmState.CrashWaitBackends or PmState.Reinit or PmState.Exit)
            return;
        _log.Log("terminating any other active backends", detail: $"Shared memory failed validation: {problem}.");
        _restartForCorruption = true;
        Transition(PmInput.FullRestartNeeded, "shared memory is invalid");
    }

    /// <summary>What is wrong with the shared structures the supervisor depends on, or null.</summary>
    private string? ShmemProblem() => _memory.Validate();

    // ---- children ----

    /// <summary>Writes what backends have written to the log pipe so far (the collector's <c>Sync</c>): called before
    /// exits are reported, so that a backend's last words come before the line about its death.</summary>
    public Action? SyncLogs { get; init; }

    private void ReapChildren()
    {
        var reaped = _children.Reap();
        if (reaped.Count == 0)
            return;
        SyncLogs?.Invoke();
        foreach (var r in reaped)
        {
            if (_acceptor?.ProcessGone(r.Process.Pid) == true && PmStateMachine.AcceptsNewBackends(_state))
                ConnectionBackendFailed(r);
        }
        if (_state.State is PmState.Run or PmState.SmartWaitSessions or PmState.WaitBackends && ShmemProblem() is { } problem)
        {
            foreach (var r in reaped)
            {
                _log.Log(r.Exit.Describe(r.Process.Describe()));
                Forget(r);
            }
            ShmemInvalid(problem);
            return;
        }
        foreach (var r in reaped)
        {
            bool done = false;
            try
            {
                OnExit(r);
                done = true;
            }
            finally
            {
                if (!done)
                    Forget(r); // the bookkeeping of every reaped child completes even when handling one threw
            }
        }
    }

    /// <summary>The least a reaped child needs when its exit is not handled normally: its slot freed, and a configured
    /// worker marked as not running (started again only after the crash restart that follows).</summary>
    private void Forget(ReapedChild r)
    {
        _children.ReleaseSlot(r.Process.Slot);
        if (_workers.Owns(r.Process))
            _workers.OnExit(r, r.Exit.Describe("process"), restartable: false);
    }

    private void OnExit(ReapedChild r)
    {
        var p = r.Process;
        string what = r.Exit.Describe(p.Describe());
        if (r.End == BackendEnd.Crashed && r.Exit.ExitCode is 0 or 1)
            what += " without releasing its slot";
        // We asked it to go (SIGTERM → 1, SIGQUIT → 2): worth a debug line only. Anything else is always logged.
        bool expected = p.StopRequested && r.Exit.ExitCode is 0 or 1 or 2;
        if (r.End == BackendEnd.Done || expected)
            _log.Debug1(what);
        else
            _log.Log(what);

        bool inCrashRestart = _state.State is PmState.CrashWaitBackends or PmState.Reinit;
        bool handled = true;
        if (r.End == BackendEnd.ShmemInvalid)
        {
            handled = false;
            ShmemInvalid(r.Problem ?? what);
        }
        else if (r.End == BackendEnd.Crashed && !inCrashRestart && _state.Shutdown != ShutdownMode.Immediate)
        {
            handled = OnCrash(p);
        }
        _children.ReleaseSlot(p.Slot);
        bool restartable = handled && !inCrashRestart && _state.State == PmState.Run;
        string exitText = r.Exit.Describe("process");
        if (_workers.Owns(p))
            _workers.OnExit(r, exitText, restartable);
        else if (p.Pooled)
            _pool.OnIdleExit(r);
    }

    /// <summary>A crash outside a full restart: reconcile, or escalate. True when reconciled.</summary>
    private bool OnCrash(BackendProcess p)
    {
        string? reason = _crash.WhyFullRestart(_memory.Shmem, p);
        if (reason is null)
        {
            Shmem.Dsm.DsmReconcileResult rec;
            try
            {
                rec = _memory.Dsm.ReconcileSlot(p.Slot, ReconcileLockTimeout, p.Pid);
            }
            catch (Exception e) when (e is not ShmemCorruptException)
            {
                _log.Log($"could not reconcile the dynamic shared memory of {p.Describe()} (PID {p.Pid}): {e.Message}");
                rec = new Shmem.Dsm.DsmReconcileResult(Shmem.Dsm.DsmReconcileStatus.LockTimeout, 0, 0, 0, 0);
            }
            if (rec.Status == Shmem.Dsm.DsmReconcileStatus.Done)
            {
                if (rec.SegmentsDestroyed + rec.AbandonedFinished + rec.Failures > 0)
                    _log.Debug1($"reconcile of slot {p.Slot}: {rec.SegmentsDestroyed} segments destroyed, {rec.AbandonedFinished} abandoned items finished, {rec.Failures} failures");
                int n = rec.ReferencesDropped;
                _log.Log($"reconciled {n} dynamic shared memory reference{(n == 1 ? "" : "s")} of {p.Describe()} (PID {p.Pid})");
                _crash.Reconciled();
                PublishCounters();
                return true;
            }
            reason = "its dynamic shared memory references could not be reconciled in time";
        }
        _log.Log("terminating any other active backends", detail: $"{p.Describe()} (PID {p.Pid}) {reason}.");
        Transition(PmInput.FullRestartNeeded, "a backend crashed");
        return false;
    }

    /// <summary>The counters of the segment about to be rebuilt, or null when they cannot be trusted.</summary>
    private InstanceCounters? OldCounters()
    {
        try
        {
            return InstanceCounters.Open(_memory.Main.Index, out _);
        }
        catch (ShmemException)
        {
            return null;
        }
    }

    private void ConfigureAcceptor()
    {
        var s = _settings.Current;
        _acceptor?.Configure(s.MaxConnections, s.SpareConnectionBackends, s.ConnectionRejectionMessage,
            _memory.IsMapped ? _memory.Shmem.Slots : null, _memory.IsMapped ? InstanceCounters.Require(_memory.Main.Index) : null,
            s.ConcurrentSessionsPerBackend);
    }

    /// <summary>A connection backend exited before it connected to the acceptor (its worker does not load, or it died
    /// starting): the connections waiting for it are refused, and the next start waits, doubling from
    /// <see cref="ConnectionRetryFirst"/> up to <see cref="ConnectionRetryMax"/> while backends keep failing, so a
    /// broken connection worker does not become a loop of process starts.</summary>
    private void ConnectionBackendFailed(ReapedChild r)
    {
        if (_acceptor!.ChannelsConnected > _connectionsConnectedAtFailure)
            _connectionFailures = 0; // a backend connected since the last failure: this one starts a new series
        _connectionsConnectedAtFailure = _acceptor.ChannelsConnected;
        _connectionFailures++;
        long delay = Math.Min((long)ConnectionRetryFirst.TotalMilliseconds << Math.Min(_connectionFailures - 1, 20),
            (long)ConnectionRetryMax.TotalMilliseconds);
        _connectionRetryAt = _clock.NowMs + delay;
        string why = $"{r.Process.Describe()} (PID {r.Process.Pid}) exited before it was ready for connections";
        _log.Log($"{why}; starting the next one in {delay} ms");
        _acceptor.CouldNotStart(why, failed: true);
    }

    private static readonly TimeSpan ConnectionRetryFirst = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan ConnectionRetryMax = TimeSpan.FromSeconds(30);

    /// <summary>Starts the connection backends the acceptor asks for: from the pool when it has members, else cold.</summary>
    private void StartConnectionBackends()
    {
        if (_acceptor is null || !PmStateMachine.AcceptsNewBackends(_state) || _clock.NowMs < _connectionRetryAt)
            return;
        var s = _settings.Current;
        string argument = ConnectionHostArgument.Format(_acceptor.ChannelName, s.MaxSessionsPerBackend,
            s.ConcurrentSessionsPerBackend, s.ConnectionSchedulingPolicy, s.ConnectionWorker, s.ConnectionWorkerArgument);
        for (int n = _acceptor.Wanted(); n > 0; n--)
        {
            if (_children.FreeSlots - _workers.WaitingForSlot <= 0 && _pool.Idle == 0)
            {
                _acceptor.CouldNotStart($"all {s.MaxBackends} backend slots are in use or reserved for configured workers (max_backends)");
                return;
            }
            var spec = WorkerSpec.Dynamic("connection", ConnectionHostArgument.Entry, argument);
            // A pool member is woken only once the acceptor expects it: it would otherwise connect first and be refused.
            var p = _pool.Take(spec, 0, wakeLater: true) ?? _children.Launch(spec, pooled: false, 0, Array.Empty<string>(), out string? error);
            if (p is null)
            {
                _acceptor.CouldNotStart("the backend could not be started");
                return;
            }
            _acceptor.Expect(p.Pid, p.Slot, s.ConcurrentSessionsPerBackend);
            _pool.WakeAssigned();
        }
    }

    private void StartDue()
    {
        _workers.StartDue(StartStatic); // configured workers first: connection backends never take their slots
        StartConnectionBackends();
        _pool.Refill(_workers.WaitingForSlot, _workers.Entries);
        if (_workers.Dirty)
            PublishWorkers();
    }

    private (BackendProcess?, string?) StartStatic(WorkerSpec spec, int restarts)
    {
        if (WorkerEntryCheck.Problem(spec.Entry, _memory.DataDir) is { } problem)
            return (null, problem);
        if (!spec.Icu && _pool.Take(spec, restarts, wakeLater: false) is { } member)
            return (member, null); // pool members run invariant globalization: an ICU worker needs its own start
        var p = _children.Launch(spec, pooled: false, restarts, Array.Empty<string>(), out string? error);
        return (p, error);
    }

    private void PublishWorkers()
    {
        if (_state.State is PmState.Exit or PmState.Reinit || !_memory.IsMapped)
            return; // no shared memory to publish into (it is rebuilt or gone); published again after the rebuild
        _memory.Shmem.WorkerStatus.Publish(_workers.Snapshot());
    }

    /// <summary>What the loop keeps in its own memory, into the instance counters: the crash-recovery totals and the
    /// pool size in effect (at start, after a reconcile or a reload, and into every rebuilt segment).</summary>
    private void PublishCounters()
    {
        var counters = InstanceCounters.Require(_memory.Main.Index);
        counters.PublishRecovery(_crash.Totals);
        counters.PublishPoolTarget(_settings.Current.BackendPoolSize);
    }

    // ---- requests (spawn, terminate, start-worker) ----

    /// <summary>SIGUSR1 / the doorbell: requests posted in shared memory by the CLI or by backends. A request that
    /// makes a handler throw is answered with the error; the loop goes on.</summary>
    private void ServeRequests()
    {
        // What this path reads: the queue and the slots (the rest is validated at every reap).
        var shmem = _memory.Shmem;
        if ((shmem.Requests.Validate() ?? shmem.Slots.Validate()) is { } bad)
            throw new ShmemCorruptException(bad);
        var queue = shmem.Requests;
        queue.ReapAbandoned();
        var batch = queue.TakeSubmitted();
        for (int k = 0; k < batch.Count; k++)
        {
            var r = batch[k];
            WorkerRequestResult result;
            try
            {
                result = r.Kind switch
                {
                    WorkerRequestKind.Spawn => Spawn(r),
                    WorkerRequestKind.Terminate => Terminate(r),
                    WorkerRequestKind.StartWorker => StartWorker(r),
                    _ => new WorkerRequestResult(false, 0, -1, 0, $"unknown request kind {(int)r.Kind}"),
                };
            }
            catch (ShmemCorruptException)
            {
                var restarting = new WorkerRequestResult(false, 0, -1, 0, "shared memory is invalid; the server is restarting");
                for (int rest = k; rest < batch.Count; rest++)
                    queue.Complete(batch[rest].Index, restarting);
                throw;
            }
            catch (Exception e)
            {
                _log.Write(Severity.Log, $"internal error while serving a {r.Kind} request of PID {r.RequesterPid}: {e.Message}",
                    detail: e.ToString(), hint: "This is a bug; please report it with this log.");
                result = new WorkerRequestResult(false, 0, -1, 0, $"internal error: {e.Message}");
            }
            queue.Complete(r.Index, result);
            _pool.WakeAssigned();
        }
    }

    private string? RefusalNow() => PmStateMachine.AcceptsNewBackends(_state) ? null : _state.State switch
    {
        PmState.CrashWaitBackends or PmState.Reinit => "the server is restarting after a crash; try again",
        PmState.Starting => "the server is starting",
        _ => "the server is shutting down",
    };

    private WorkerRequestResult Spawn(WorkerRequest r)
    {
        var p = StartDynamic(r.Name, r.Entry, r.Argument, out string? error);
        if (p is null)
        {
            _log.Log($"could not start dynamic background worker \"{r.Name}\" requested by PID {r.RequesterPid}: {error}");
            return new WorkerRequestResult(false, 0, -1, 0, error);
        }
        return new WorkerRequestResult(true, p.Pid, p.Slot, p.Generation, null);
    }

    /// <summary>Starts a dynamic worker now, from the pool when one is parked. The pool is refilled by the loop after
    /// the answer is posted, not before: a process start here would delay the requester by its cost.</summary>
    private BackendProcess? StartDynamic(string name, string entry, string argument, out string? error)
    {
        error = RefusalNow() ?? BackendSlotArray.Validate(name, entry, argument) ?? WorkerEntryCheck.Problem(entry, _memory.DataDir);
        if (error is not null)
            return null;
        var spec = WorkerSpec.Dynamic(name, entry, argument);
        var p = _pool.Take(spec, 0, wakeLater: true);
        if (p is not null)
            return p;
        p = _children.Launch(spec, pooled: false, 0, Array.Empty<string>(), out error);
        if (p is not null)
            _pool.Remember(entry);
        return p;
    }

    /// <summary>Stops backends by pid or name with SIGTERM; they are not restarted (a static worker becomes "stopped").
    /// The answer carries the first pid and, in its generation field, how many were signalled.</summary>
    private WorkerRequestResult Terminate(WorkerRequest r)
    {
        string target = r.Target;
        var victims = int.TryParse(target, out int pid)
            ? _children.All.Where(p => p.Pid == pid).ToList()
            : _children.All.Where(p => !p.Pooled && (p.Spec.Name == target || p.Spec.ConfigName == target)).ToList();
        int idle = pid == 0 ? _workers.StopIdle(target) : 0; // instances of NAME in back-off or waiting stay stopped too
        foreach (var p in victims)
        {
            if (_workers.Owns(p))
                _workers.MarkOperatorStop(p);
            _children.Stop(p, Signals.SIGTERM);
        }
        if (victims.Count > 0)
            _log.Log($"terminating {string.Join(", ", victims.Select(x => $"PID {x.Pid}"))} at the request of PID {r.RequesterPid}");
        if (idle > 0 && victims.Count == 0)
        {
            _log.Log($"background worker \"{target}\" stopped at the request of PID {r.RequesterPid} (it was not running)");
            return new WorkerRequestResult(true, 0, -1, 0, null);
        }
        return victims.Count == 0
            ? new WorkerRequestResult(false, 0, -1, 0, $"no backend \"{target}\" is running")
            : new WorkerRequestResult(true, victims[0].Pid, -1, victims.Count, null);
    }

    private WorkerRequestResult StartWorker(WorkerRequest r)
    {
        if (RefusalNow() is { } refused)
            return new WorkerRequestResult(false, 0, -1, 0, refused);
        if (_workers.StartAgain(r.Target) is { } error)
            return new WorkerRequestResult(false, 0, -1, 0, error);
        _log.Log($"starting background worker \"{r.Target}\" at the request of PID {r.RequesterPid}");
        StartDue();
        var started = _children.All.FirstOrDefault(p => _workers.Owns(p) && (p.Spec.Name == r.Target || p.Spec.ConfigName == r.Target));
        return started is null
            ? new WorkerRequestResult(false, 0, -1, 0, $"background worker \"{r.Target}\" could not be started; see the server log")
            : new WorkerRequestResult(true, started.Pid, started.Slot, started.Generation, null);
    }

    // ---- reload and the lock file ----

    private void Reload()
    {
        if (!PmStateMachine.AcceptsReload(_state))
            return;
        var configPath = _settings.ConfigPath;
        _log.Log("received SIGHUP, reloading configuration files");
        _systemd.Reloading();
        try
        {
            ApplyReload(configPath);
        }
        finally
        {
            _systemd.Reloaded("ready");
        }
    }

    private void ApplyReload(string configPath)
    {
        ReloadResult result;
        try
        {
            result = ConfigLoader.Reload(_settings.Current, configPath, _settings.Overrides);
        }
        catch (ConfigException e)
        {
            foreach (var err in e.Errors)
                _log.Write(Severity.Log, err.Message, hint: err.Hint);
            _log.Log($"configuration file \"{configPath}\" contains errors; no changes were applied");
            return;
        }
        foreach (var change in result.Changed)
            _log.Log(change);
        foreach (var pending in result.PendingRestart)
            _log.Log(pending);
        int staticCount = StaticWorkers.CountOf(result.Next);
        if (staticCount > result.Next.MaxBackends)
        {
            _log.Log($"too many background workers: the configuration asks for {staticCount}; no changes were applied",
                hint: $"Up to {result.Next.MaxBackends} backends can run with the current settings.");
            return;
        }
        _settings.Replace(result.Next);
        _log.MinimumSeverity = _settings.Current.LogMinMessages;
        _log.Rotation = _settings.Current.LogRotation;
        _memory.PublishLogLevel(_settings.Current.LogMinMessages);
        _children.Forward(Signals.SIGHUP);
        _workers.Apply(_settings.Current, StopBackend);
        _pool.Trim();
        PublishCounters();
    }

    private void RecheckLockFile()
    {
        _nextLockCheck = _clock.NowMs + (long)LockFileRecheckInterval.TotalMilliseconds;
        if (_lockFile.StillOurs())
            return;
        _log.Log($"lock file \"{_lockFile.Path}\" was removed or replaced");
        _log.Log("performing immediate shutdown because data directory lock file is invalid");
        Transition(PmInput.ImmediateShutdown, "the lock file is invalid");
    }
}
