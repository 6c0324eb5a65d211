using Postmaster.Configuration;
using Postmaster.Daemon;
using Postmaster.Logging;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;

namespace Postmaster.Supervision;

/// <summary>
/// What happens when a backend crashes (any exit other than 0/1, a signal, or 0/1 with its slot still Active).
/// Overview: if the dead backend provably left shared state consistent — its lock-owner record lists no lock (the
/// record is written before every acquire, so "none" is exact) and it was outside any critical section — only
/// what it held is repaired (<see cref="ReconcileDsm"/>: its DSM references) and everyone else keeps running
/// (<c>crash_recovery = reconcile</c>, the default). Otherwise, or with <c>crash_recovery = restart_all</c>,
/// PostgreSQL's path: SIGQUIT every other backend, SIGKILL stragglers after shutdown_kill_timeout, and once none
/// is left destroy and recreate all shared memory and start the static workers again. Crash loops are bounded:
/// more than crash_restart_limit full restarts within crash_restart_interval shut the server down (exit 1).
/// Everything here runs on the supervisor loop and never blocks on a shared lock.
/// </summary>
public sealed class CrashRecovery
{
    private readonly ServerLog _log;
    private readonly BackendSupervisor _backends;
    private readonly Func<Settings> _settings;
    private readonly Func<ShutdownMode> _shutdown;
    private Queue<DateTime>? _restarts; // created on the first full restart

    public CrashRecovery(ServerLog log, BackendSupervisor backends, Func<Settings> settings, Func<ShutdownMode> shutdown)
    {
        _log = log;
        _backends = backends;
        _settings = settings;
        _shutdown = shutdown;
    }

    /// <summary>Reconciles a dead slot's dynamic shared memory: the number of references dropped, or null when it
    /// could not be done in time (the caller then escalates to a full restart).</summary>
    public Func<int, int?> ReconcileDsm { get; set; } = _ => 0;

    /// <summary>A full restart is under way: waiting for the backends to go.</summary>
    public bool InProgress { get; private set; }

    /// <summary>A crash was seen that ends in an abnormal shutdown (exit 1).</summary>
    public bool Abnormal { get; private set; }


    /// <summary><see cref="BackendSupervisor.CrashHandler"/>: true when handled locally, false when escalated.</summary>
    public bool OnCrash(BackendProcess p, ChildExit exit)
    {
        var shutdown = _shutdown();
        if (InProgress || shutdown == ShutdownMode.Immediate)
            return true; // expected: we sent SIGQUIT
        if (shutdown != ShutdownMode.None)
        {
            Abnormal = true;
            return true;
        }
        string? reason = WhyFullRestart(p);
        if (reason is null)
        {
            int? dropped = ReconcileDsm(p.Slot);
            if (dropped is int n)
            {
                _log.Log($"reconciled {n} dynamic shared memory reference{(n == 1 ? "" : "s")} of {p.Describe()} (PID {p.Pid})");
                return true;
            }
            reason = "its dynamic shared memory references could not be reconciled in time";
        }
        _log.Log("terminating any other active backends", detail: $"{p.Describe()} (PID {p.Pid}) {reason}.");
        InProgress = true;
        Abnormal = true;
        _backends.QuitAllForCrash();
        return false;
    }

    private string? WhyFullRestart(BackendProcess p)
    {
        var owners = _backends.Shmem.Owners;
        int held = owners.ReadHeldCount(p.Slot);
        if (held > 0)
        {
            var names = new LWLockInspector(owners, _backends.Shmem.Tranches).HeldBy(p.Slot)
                .Select(h => h.TrancheName).Distinct().Take(5);
            return $"died holding {held} lightweight lock{(held == 1 ? "" : "s")} ({string.Join(", ", names)}), so shared memory may be corrupt";
        }
        if (owners.CriticalSectionDepth(p.Slot) > 0)
            return "died inside a critical section, so shared memory may be corrupt";
        if (_settings().CrashRecovery == Configuration.CrashRecovery.RestartAll)
            return "crashed and crash_recovery is restart_all";
        return null;
    }

    /// <summary>Called by the loop once no backend is left during a full restart. Returns true when shared memory
    /// was rebuilt and backends may start again; false when the server must shut down (exit 1).</summary>
    public bool Finish(InstanceMemory memory)
    {
        var settings = _settings();
        if (!settings.RestartAfterCrash)
        {
            _log.Log("shutting down because \"restart_after_crash\" is off");
            return false;
        }
        var now = DateTime.UtcNow;
        _restarts ??= new Queue<DateTime>();
        while (_restarts.Count > 0 && now - _restarts.Peek() > settings.CrashRestartInterval)
            _restarts.Dequeue();
        if (_restarts.Count >= settings.CrashRestartLimit)
        {
            _log.Log($"shutting down: {_restarts.Count} crash restarts within {settings.CrashRestartInterval.TotalSeconds:0} s " +
                     $"reached crash_restart_limit ({settings.CrashRestartLimit})",
                hint: "A backend keeps crashing; see the log lines above for the first failure.");
            return false;
        }
        _log.Log("all backends terminated; reinitializing");
        memory.Reinitialize();
        _backends.Reinitialized(memory.Shmem);
        _restarts.Enqueue(now);
        InProgress = false;
        Abnormal = false; // recovered: a later clean shutdown is a normal one
        return true;
    }
}
