using Postmaster.Shmem.Os;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Crash;

/// <summary>PostgreSQL's 013_crash_restart and 017_shm, rewritten for this system, plus reconcile and crash loops;
/// written with Postmaster.Testing as a user's crash tests would be.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class CrashRecoveryTests
{
    [Theory]
    [InlineData(UnixSignal.SIGQUIT)]
    [InlineData(UnixSignal.SIGKILL)]
    public void Crash_of_a_lock_holder_terminates_every_backend_and_rebuilds_shared_memory(UnixSignal signal)
    {
        using var pm = PostmasterCluster.StartNew(new ClusterOptions
        {
            Name = "013-" + signal,
            Settings = { ["backend_pool_size"] = "1" },
            Workers = { new WorkerSpec("holder", "lock-hold"), new WorkerSpec("other", "idle") { Count = 2 } },
        });
        pm.WaitForLog("is holding lock \"test lock\"");
        var before = pm.WaitForBackends(b => b.Count == 3, "three workers");
        var status = pm.Status();
        Assert.Equal(0, status.FullRestarts);
        Assert.Equal(0, status.Reconciles);

        pm.Signal(before.Single(b => b.Name == "holder"), signal);
        var after = pm.WaitForFullRestart();
        Assert.Equal(1, after.FullRestarts);
        Assert.Equal(0, after.Reconciles);
        Assert.Equal(status.Pid, after.Pid);
        Assert.NotEqual(status.SharedMemory!.Id, after.SharedMemory!.Id); // a fresh segment
        pm.WaitForBackends(b => b.Count == 3 && b.All(x => before.All(y => y.Pid != x.Pid)), "three new workers");
        var log = pm.ServerLog();
        Assert.Contains("LOG:  terminating any other active backends", log);
        Assert.Contains("died holding 1 lightweight lock (test lock), so shared memory may be corrupt", log);
        Assert.Contains("all backends terminated; reinitializing", log);
        pm.WaitUntil(() => pm.ServerLogLines().Count(l => l.Contains("is holding lock \"test lock\"")) == 2,
            "the lock to be taken again in the new segment");
        pm.Stop();
        Assert.DoesNotContain("abnormal", pm.ServerLog());
        pm.AssertNothingLeaked(); // every backend of both generations is gone, and both segments
    }

    [Fact]
    public void Crash_without_locks_is_reconciled_and_the_other_backends_keep_running()
    {
        using var pm = PostmasterCluster.StartNew(new ClusterOptions
        {
            Name = "reconcile",
            Workers = { new WorkerSpec("w", "idle") { Count = 3, RestartDelay = TimeSpan.FromMilliseconds(10) } },
        });
        var before = pm.WaitForBackends(b => b.Count == 3, "three workers");
        var victim = before[0];
        pm.Kill(victim);
        var reconciled = pm.WaitForReconcile();
        Assert.Equal(1, reconciled.Reconciles);
        Assert.Equal(0, reconciled.FullRestarts);
        Assert.Contains("crash recovery:   0 full restarts, 1 reconciled crashes", pm.Run("status").Stdout);
        pm.WaitForLog($"reconciled 0 dynamic shared memory references of background worker \"{victim.Name}\" (PID {victim.Pid})");
        var after = pm.WaitForBackends(b => b.Count == 3 && b.All(x => x.Pid != victim.Pid), "the victim's replacement");
        Assert.Equal(before.Skip(1).Select(b => b.Pid).Order(), after.Where(b => b.Name != victim.Name).Select(b => b.Pid).Order());
        Assert.Equal(1, pm.WaitForWorker(victim.Name, WorkerState.Running).Single().Restarts);
        Assert.DoesNotContain("terminating any other active backends", pm.ServerLog());
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Exit_0_without_running_the_exit_path_is_a_crash()
    {
        using var pm = PostmasterCluster.StartNew(new ClusterOptions { Name = "deadman" });
        var since = pm.Status();
        pm.Spawn("exit", "raw:0", "raw");
        pm.WaitForReconcile(since);
        pm.WaitForLog("exited with exit code 0 without releasing its slot");
        pm.WaitForLog("reconciled 0 dynamic shared memory references of background worker \"raw\"");
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Restart_all_rebuilds_even_when_the_crash_held_nothing()
    {
        using var pm = PostmasterCluster.StartNew(new ClusterOptions
        {
            Name = "restartall",
            Settings = { ["crash_recovery"] = "restart_all" },
            Workers = { new WorkerSpec("w", "idle") { Count = 2 } },
        });
        var before = pm.WaitForBackends(b => b.Count == 2, "two workers");
        pm.Kill(before[0]);
        Assert.Equal(RecoveryKind.FullRestart, pm.WaitForRecovery());
        pm.WaitForBackends(b => b.Count == 2 && b.All(x => before.All(y => y.Pid != x.Pid)), "two new workers");
        Assert.Contains("crashed and crash_recovery is restart_all", pm.ServerLog());
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Restart_after_crash_off_shuts_down_with_exit_1()
    {
        using var pm = PostmasterCluster.StartNew(new ClusterOptions
        {
            Name = "noreinit",
            Settings = { ["restart_after_crash"] = "off" },
            Workers = { new WorkerSpec("h", "lock-hold") },
        });
        pm.WaitForLog("is holding lock");
        pm.Kill(pm.WaitForBackends(b => b.Count == 1, "the holder").Single());
        pm.WaitUntilStopped();
        var log = pm.ServerLog();
        Assert.Contains("shutting down because \"restart_after_crash\" is off", log);
        Assert.Contains("abnormal postmaster shutdown", log);
        Assert.False(File.Exists(Path.Combine(pm.DataDirectory, "postmaster.pid")));
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void A_crash_loop_is_bounded_and_ends_in_a_clean_stop_with_the_reason()
    {
        using var pm = PostmasterCluster.Create(new ClusterOptions
        {
            Name = "crashloop",
            Settings = { ["crash_recovery"] = "restart_all", ["crash_restart_limit"] = "2" },
            Workers = { new WorkerSpec("bad", "exit", "SEGV:100ms") },
        });
        pm.TryStart(); // may see the first crash before it is ready: its outcome is not the point
        pm.WaitUntil(() => pm.ServerLog().Contains("postmaster is shut down") && !pm.IsRunning, "the postmaster to give up");
        var log = pm.ServerLog();
        Assert.Equal(2, log.Split("all backends terminated; reinitializing").Length - 1);
        Assert.Contains("shutting down: 2 crash restarts within 60 s reached crash_restart_limit (2)", log);
        Assert.Contains("was terminated by signal 11: Segmentation fault", log);
        Assert.False(File.Exists(Path.Combine(pm.DataDirectory, "postmaster.pid")));
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void A_live_old_backend_blocks_start_until_it_is_gone()
    {
        // 017_shm.pl (d): a backend that cannot notice the postmaster's death (here: stopped with SIGSTOP).
        using var pm = PostmasterCluster.StartNew(new ClusterOptions { Name = "017", Workers = { new WorkerSpec("w", "idle") } });
        var w = pm.WaitForBackends(b => b.Count == 1, "the worker").Single();
        var old = pm.Status().SharedMemory!;
        pm.Signal(w, UnixSignal.SIGSTOP);
        pm.KillPostmaster();
        pm.WaitUntilStopped();
        var refused = pm.Run("start");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains($"pre-existing shared memory block (key {old.Key}, ID {old.Id}) is still in use", refused.Stderr);
        Assert.Contains($"It is still attached by process {w.Pid}.", refused.Stderr);
        var cleanup = pm.Run("cleanup");
        Assert.Equal(1, cleanup.ExitCode);
        Assert.Contains($"It is still attached by process {w.Pid}.", cleanup.Stderr);
        Assert.Contains($"process {w.Pid} (backend \"w\") is still running", pm.FindLeaks());

        // No postmaster proves it a backend any more, so the harness refuses; the test that stopped it ends it.
        Assert.Throws<ClusterException>(() => pm.Kill(w));
        ProcessControl.Signal(w.Pid!.Value, Signals.SIGKILL);
        pm.WaitUntil(() => !ProcessControl.IsAlive(w.Pid.Value), "the old backend to die");
        pm.Start();
        Assert.Equal(old.Key, pm.Status().SharedMemory!.Key);
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Cleanup_removes_what_a_killed_instance_left_without_starting()
    {
        using var pm = PostmasterCluster.StartNew(new ClusterOptions
        {
            Name = "cleanup",
            Settings = { ["backend_pool_size"] = "1" },
            Workers = { new WorkerSpec("w", "idle") },
        });
        pm.WaitForStatus(s => s.RunningBackends.Count == 1 && s.Backends.Count == 2, "the worker and the pool member");
        var old = pm.Status().SharedMemory!;
        Assert.Equal(1, pm.Run("cleanup").ExitCode); // refuses while the server runs
        pm.KillPostmaster();
        pm.WaitUntil(() => pm.FindLeaks().All(l => !l.StartsWith("process", StringComparison.Ordinal)),
            "the backends to exit after the postmaster died");
        Assert.Contains($"sysv main shared memory segment (key {old.Key}, ID {old.Id})", pm.FindLeaks());
        var r = pm.Run("cleanup");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("cleaned up 3 objects", r.Stdout); // main segment, DSM control segment, lock file
        Assert.False(File.Exists(Path.Combine(pm.DataDirectory, "postmaster.pid")));
        Assert.Contains("nothing to clean up", pm.Run("cleanup").Stdout);
        pm.AssertNothingLeaked();
    }
}
