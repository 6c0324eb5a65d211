using Postmaster.Configuration;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Locks;

namespace Postmaster.Supervision;

/// <summary>
/// The two decisions of crash handling (a crash: any exit other than 0/1, a signal, or 0/1 with the slot still Active).
/// <see cref="WhyFullRestart"/>: if the dead backend provably left shared state consistent — its lock-owner record lists
/// no lock (the record is written before every acquire, so "none" is exact) and it was outside any critical section —
/// only what it held is repaired (its DSM references) and everyone else keeps running (<c>crash_recovery =
/// reconcile</c>, the default); otherwise PostgreSQL's full restart. <see cref="MayReinitialize"/>: the crash-loop
/// breaker (more than crash_restart_limit full restarts within crash_restart_interval, restart_after_crash off, or
/// shared memory invalid again within crash_restart_interval → the server stops, exit 1). Pure apart from reading the owner records, which
/// are validated (a corrupt record is itself a reason for the full restart).
/// </summary>
internal sealed class CrashRecovery
{
    private readonly Func<Settings> _settings;
    private readonly IClock _clock;
    private readonly Queue<long> _restarts = new(); // monotonic ms of the full restarts done
    private long _lastCorruptionRestart = long.MinValue; // monotonic ms of the last restart caused by invalid memory

    public CrashRecovery(Func<Settings> settings, IClock clock)
    {
        _settings = settings;
        _clock = clock;
    }

    /// <summary>Why this crash needs a full restart, or null when reconciling it is safe.</summary>
    public string? WhyFullRestart(InstanceShmem shmem, BackendProcess p)
    {
        var owners = shmem.Owners;
        int held;
        try
        {
            held = owners.ReadHeldCount(p.Slot);
            if (held > 0)
            {
                var names = new LWLockInspector(owners, shmem.Tranches).HeldBy(p.Slot)
                    .Select(h => h.TrancheName).Distinct().Take(5);
                return $"died holding {held} lightweight lock{(held == 1 ? "" : "s")} ({string.Join(", ", names)}), so shared memory may be corrupt";
            }
            if (owners.CriticalSectionDepth(p.Slot) > 0)
                return "died inside a critical section, so shared memory may be corrupt";
        }
        catch (ShmemException e)
        {
            return $"left a lock-owner record that cannot be read ({e.Message}), so shared memory may be corrupt";
        }
        if (_settings().CrashRecovery == Configuration.CrashRecovery.RestartAll)
            return "crashed and crash_recovery is restart_all";
        return null;
    }

    /// <summary>Whether the full restart about to happen may rebuild shared memory; else why the server must stop.
    /// <paramref name="corruption"/>: this restart is because shared memory failed validation.</summary>
    public string? WhyNotReinitialize(bool corruption)
    {
        var s = _settings();
        if (!s.RestartAfterCrash)
            return "shutting down because \"restart_after_crash\" is off";
        long now = _clock.NowMs;
        if (corruption && _lastCorruptionRestart != long.MinValue &&
            now - _lastCorruptionRestart <= (long)s.CrashRestartInterval.TotalMilliseconds)
            return $"shutting down: shared memory failed validation again within {s.CrashRestartInterval.TotalSeconds:0} s of being rebuilt";
        while (_restarts.Count > 0 && now - _restarts.Peek() > (long)s.CrashRestartInterval.TotalMilliseconds)
            _restarts.Dequeue();
        if (_restarts.Count >= s.CrashRestartLimit)
            return $"shutting down: {_restarts.Count} crash restarts within {s.CrashRestartInterval.TotalSeconds:0} s " +
                   $"reached crash_restart_limit ({s.CrashRestartLimit})";
        return null;
    }

    /// <summary>Full restarts done and crashes reconciled since the postmaster started (published for <c>status</c>
    /// through <see cref="RecoveryCountersTable"/>).</summary>
    public RecoveryTotals Totals { get; private set; }

    /// <summary>Records a full restart that was done.</summary>
    public void Restarted(bool corruption)
    {
        _restarts.Enqueue(_clock.NowMs);
        if (corruption)
            _lastCorruptionRestart = _clock.NowMs;
        Totals = Totals with { FullRestarts = Totals.FullRestarts + 1 };
    }

    /// <summary>Records a crash that was reconciled.</summary>
    public void Reconciled() => Totals = Totals with { Reconciles = Totals.Reconciles + 1 };
}
