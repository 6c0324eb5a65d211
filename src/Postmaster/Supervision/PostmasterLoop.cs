using System.Collections.Concurrent;
using Postmaster.Configuration;
using Postmaster.Daemon;
using Postmaster.Logging;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;

namespace Postmaster.Supervision;

/// <summary>
/// The supervisor's single loop: takes one event at a time from the queue the signal handlers feed, and runs the
/// periodic checks (lock-file recheck) on its deadline. Shutdown escalates one way only (smart → fast → immediate);
/// a weaker request is ignored, and SIGHUP is ignored once a fast or immediate shutdown has begun.
/// </summary>
public sealed class PostmasterLoop
{
    /// <summary>How often the loop verifies that postmaster.pid is still ours (PostgreSQL: once a minute).</summary>
    public static readonly TimeSpan LockFileRecheckInterval = TimeSpan.FromSeconds(60);

    private readonly BlockingCollection<PmEvent> _queue;
    private readonly ServerLog _log;
    private readonly DataDirLockFile _lockFile;
    private readonly string _configPath;
    private readonly IReadOnlyList<string> _overrides;
    private readonly BackendSupervisor _backends;
    private readonly InstanceMemory _memory;
    private readonly CrashRecovery _crash;
    private readonly RequestDoorbell _doorbell;
    private Settings _settings;
    private ShutdownMode _shutdown = ShutdownMode.None;
    private long _nextLockCheck;

    /// <summary>While children exist, how often they are reaped even without SIGCHLD (a backstop, never the main path).</summary>
    public static readonly TimeSpan ReapBackstopInterval = TimeSpan.FromSeconds(1);

    public PostmasterLoop(BlockingCollection<PmEvent> queue, ServerLog log, DataDirLockFile lockFile, Settings settings,
        string configPath, IReadOnlyList<string> overrides, BackendSupervisor backends, InstanceMemory memory,
        RequestDoorbell doorbell)
    {
        _doorbell = doorbell;
        _backends = backends;
        _memory = memory;
        _queue = queue;
        _log = log;
        _lockFile = lockFile;
        _settings = settings;
        _configPath = configPath;
        _overrides = overrides;
        _crash = new CrashRecovery(log, backends, () => _settings, () => _shutdown) { ReconcileDsm = ReconcileDsm };
        backends.CrashHandler = OnCrash;
    }

    public Settings Settings => _settings;

    /// <summary>Runs until shutdown is complete; returns the process exit code.</summary>
    public int Run()
    {
        _nextLockCheck = Environment.TickCount64 + (long)LockFileRecheckInterval.TotalMilliseconds;
        long nextReap = Environment.TickCount64 + (long)ReapBackstopInterval.TotalMilliseconds;
        _backends.StartDue(); // the static workers and the pool, right after "ready"
        while (true)
        {
            long now = Environment.TickCount64;
            long due = Math.Min(_nextLockCheck, _backends.NextDeadline());
            if (_backends.Count > 0)
                due = Math.Min(due, nextReap);
            int wait = (int)Math.Clamp(due - now, 0, int.MaxValue);
            if (_queue.TryTake(out var ev, wait))
                Handle(ev);
            now = Environment.TickCount64;
            if (now >= nextReap)
            {
                nextReap = now + (long)ReapBackstopInterval.TotalMilliseconds;
                _backends.ReapChildren();
            }
            if (now >= _nextLockCheck)
                RecheckLockFile();
            _backends.EnforceKillDeadline();
            _backends.AdvanceSmartShutdown();
            if (_crash.InProgress && _backends.Count == 0 && _shutdown == ShutdownMode.None)
            {
                _doorbell.Stop(); // its word is in the segment about to be destroyed
                if (_crash.Finish(_memory))
                {
                    _doorbell.Start(_memory.Shmem.Requests);
                    _lockFile.SetStatus(PmStatus.Ready);
                }
                else
                {
                    RequestShutdown(ShutdownMode.Immediate);
                }
            }
            _backends.StartDue();
            if (_shutdown != ShutdownMode.None && _backends.Count == 0)
            {
                if (_crash.Abnormal)
                {
                    _log.Log("abnormal postmaster shutdown");
                    return PostmasterServer.ExitFailure;
                }
                return PostmasterServer.ExitOk;
            }
        }
    }


    public ShutdownMode Shutdown => _shutdown;


    /// <summary>How long the supervisor may wait for the DSM control lock while reconciling (then: full restart).</summary>
    public static readonly TimeSpan ReconcileLockTimeout = TimeSpan.FromMilliseconds(200);

    private int? ReconcileDsm(int slot)
    {
        var r = _memory.Dsm.ReconcileSlot(slot, ReconcileLockTimeout);
        if (r.Status != Shmem.Dsm.DsmReconcileStatus.Done)
            return null;
        if (r.SegmentsDestroyed + r.AbandonedFinished + r.Failures > 0)
            _log.Debug1($"reconcile of slot {slot}: {r.SegmentsDestroyed} segments destroyed, {r.AbandonedFinished} abandoned items finished, {r.Failures} failures");
        return r.ReferencesDropped;
    }

    private bool OnCrash(BackendProcess p, ChildExit exit)
    {
        bool handled = _crash.OnCrash(p, exit);
        if (!handled)
            _lockFile.SetStatus(PmStatus.Starting); // shared memory is about to be rebuilt
        return handled;
    }

    private void Handle(PmEvent ev)
    {
        switch (ev)
        {
            case PmEvent.ShutdownRequested s:
                RequestShutdown(s.Mode);
                break;
            case PmEvent.ReloadRequested:
                Reload();
                break;
            case PmEvent.ChildSignal:
                _backends.ReapChildren();
                break;
            case PmEvent.PmSignal:
                ServeRequests();
                break;
            default:
                throw new InvalidOperationException($"internal error: unknown supervisor event {ev}; please report this");
        }
    }

    /// <summary>SIGUSR1: spawn and terminate requests posted in shared memory by the CLI or by backends.</summary>
    private void ServeRequests()
    {
        var queue = _backends.Shmem.Requests;
        queue.ReapAbandoned();
        foreach (var r in queue.TakeSubmitted())
        {
            WorkerRequestResult result;
            if (r.Kind == WorkerRequestKind.Spawn)
            {
                var p = _backends.StartDynamic(r.Name, r.Entry, r.Argument, out string? error);
                result = p is null
                    ? new WorkerRequestResult(false, 0, -1, 0, error)
                    : new WorkerRequestResult(true, p.Pid, p.Slot, p.Generation, null);
                if (p is null)
                    _log.Log($"could not start dynamic background worker \"{r.Name}\" requested by PID {r.RequesterPid}: {error}");
            }
            else
            {
                // For a terminate request the answer's generation field carries how many backends were signalled.
                var pids = _backends.Terminate(r.Target);
                result = pids.Count == 0
                    ? new WorkerRequestResult(false, 0, -1, 0, $"no backend \"{r.Target}\" is running")
                    : new WorkerRequestResult(true, pids[0], -1, pids.Count, null);
                if (pids.Count > 0)
                    _log.Log($"terminating {string.Join(", ", pids.Select(x => $"PID {x}"))} at the request of PID {r.RequesterPid}");
            }
            queue.Complete(r.Index, result);
            _backends.WakeAssigned();
        }
    }

    private void RequestShutdown(ShutdownMode mode)
    {
        if (mode <= _shutdown)
            return; // escalation is one-way
        _shutdown = mode;
        _log.Log(mode switch
        {
            ShutdownMode.Smart => "received smart shutdown request",
            ShutdownMode.Fast => "received fast shutdown request",
            _ => "received immediate shutdown request",
        });
        _lockFile.SetStatus(PmStatus.Stopping);
        SystemdNotify.Send("STOPPING=1");
        _backends.BeginShutdown(mode);
    }

    private void Reload()
    {
        if (_shutdown >= ShutdownMode.Fast)
            return;
        _log.Log("received SIGHUP, reloading configuration files");
        try
        {
            var result = ConfigLoader.Reload(_settings, _configPath, _overrides);
            foreach (var change in result.Changed)
                _log.Log(change);
            foreach (var pending in result.PendingRestart)
                _log.Log(pending);
            _settings = result.Next;
            _log.MinimumSeverity = _settings.LogMinMessages;
            _backends.ForwardSignal(Signals.SIGHUP);
            if (_shutdown == ShutdownMode.None)
                _backends.ApplyConfiguration(_settings);
        }
        catch (ConfigException e)
        {
            foreach (var err in e.Errors)
                _log.Write(Severity.Log, err.Message, hint: err.Hint);
            _log.Log($"configuration file \"{_configPath}\" contains errors; no changes were applied");
        }
    }

    private void RecheckLockFile()
    {
        _nextLockCheck = Environment.TickCount64 + (long)LockFileRecheckInterval.TotalMilliseconds;
        if (_lockFile.StillOurs())
            return;
        _log.Log($"lock file \"{_lockFile.Path}\" was removed or replaced");
        _log.Log("performing immediate shutdown because data directory lock file is invalid");
        RequestShutdown(ShutdownMode.Immediate);
    }
}
