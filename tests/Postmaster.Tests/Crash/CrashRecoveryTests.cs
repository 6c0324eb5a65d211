using Postmaster.Shmem.Os;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Crash;

/// <summary>PostgreSQL's 013_crash_restart and 017_shm, rewritten for this system, plus reconcile and crash loops.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class CrashRecoveryTests
{
    private static PmInstance Instance(string label, params string[] config)
    {
        var pm = new PmInstance(label);
        pm.InitBare(config);
        return pm;
    }

    [Theory]
    [InlineData("QUIT")]
    [InlineData("KILL")]
    public void Crash_of_a_lock_holder_terminates_every_backend_and_rebuilds_shared_memory(string signal)
    {
        using var pm = Instance("013-" + signal, "worker.holder.entry = 'lock-hold'", "worker.other.entry = 'idle'",
            "worker.other.count = 2", "backend_pool_size = 1");
        pm.StartOk();
        pm.WaitForLog("is holding lock \"test lock\"");
        var before = pm.WaitForBackends(b => b.Count == 3, "three workers");
        int pmPid = pm.Pid;
        long idBefore = pm.LockFile!.ShmId!.Value;
        Assert.True(Signals.TryParse(signal, out int sig));
        ProcessControl.Signal(before.Single(b => b.Name == "holder").Pid, sig);

        pm.WaitForLog("all backends terminated; reinitializing");
        var after = pm.WaitForBackends(b => b.Count == 3 && b.All(x => before.All(y => y.Pid != x.Pid)), "three new workers");
        Assert.Equal(pmPid, pm.Pid);
        Assert.Equal("ready", pm.LockFile!.TrimmedStatus);
        Assert.NotEqual(idBefore, pm.LockFile!.ShmId); // a fresh segment
        Assert.All(before, b => Assert.False(ProcessControl.IsAlive(b.Pid)));
        var log = pm.Log;
        Assert.Contains("LOG:  terminating any other active backends", log);
        Assert.Contains("died holding 1 lightweight lock (test lock), so shared memory may be corrupt", log);
        pm.WaitForLog("is holding lock \"test lock\""); // the lock is usable again in the new segment
        Assert.Equal(0, pm.Stop().ExitCode);
        Assert.DoesNotContain("abnormal", pm.Log);
    }

    [Fact]
    public void Crash_without_locks_is_reconciled_and_the_other_backends_keep_running()
    {
        using var pm = Instance("reconcile", "worker.w.entry = 'idle'", "worker.w.count = 3", "backend_pool_size = 0",
            "worker.w.restart_delay = 10ms");
        pm.StartOk();
        var before = pm.WaitForBackends(b => b.Count == 3, "three workers");
        var victim = before[0];
        ProcessControl.Signal(victim.Pid, Signals.SIGKILL);
        pm.WaitForLog($"reconciled 0 dynamic shared memory references of background worker \"{victim.Name}\" (PID {victim.Pid})");
        var after = pm.WaitForBackends(b => b.Count == 3 && b.All(x => x.Pid != victim.Pid), "the victim's replacement");
        Assert.Equal(before.Skip(1).Select(b => b.Pid).Order(), after.Where(b => b.Name != victim.Name).Select(b => b.Pid).Order());
        Assert.DoesNotContain("terminating any other active backends", pm.Log);
        Assert.Equal(0, pm.Stop().ExitCode);
    }

    [Fact]
    public void Exit_0_without_running_the_exit_path_is_a_crash()
    {
        using var pm = Instance("deadman", "backend_pool_size = 0");
        pm.StartOk();
        Assert.Equal(0, pm.Do("spawn", "--worker", "exit", "--argument", "raw:0", "--name", "raw").ExitCode);
        pm.WaitForLog("exited with exit code 0 without releasing its slot");
        pm.WaitForLog("reconciled 0 dynamic shared memory references of background worker \"raw\"");
        Assert.Equal(0, pm.Stop().ExitCode);
    }

    [Fact]
    public void Restart_all_rebuilds_even_when_the_crash_held_nothing()
    {
        using var pm = Instance("restartall", "crash_recovery = restart_all", "worker.w.entry = 'idle'", "worker.w.count = 2",
            "backend_pool_size = 0");
        pm.StartOk();
        var before = pm.WaitForBackends(b => b.Count == 2, "two workers");
        ProcessControl.Signal(before[0].Pid, Signals.SIGKILL);
        pm.WaitForLog("all backends terminated; reinitializing");
        pm.WaitForBackends(b => b.Count == 2 && b.All(x => before.All(y => y.Pid != x.Pid)), "two new workers");
        Assert.Contains("crashed and crash_recovery is restart_all", pm.Log);
        Assert.Equal(0, pm.Stop().ExitCode);
    }

    [Fact]
    public void Restart_after_crash_off_shuts_down_with_exit_1()
    {
        using var pm = Instance("noreinit", "restart_after_crash = off", "worker.h.entry = 'lock-hold'", "backend_pool_size = 0");
        pm.StartOk();
        pm.WaitForLog("is holding lock");
        var h = pm.WaitForBackends(b => b.Count == 1, "the holder").Single();
        ProcessControl.Signal(h.Pid, Signals.SIGKILL);
        Wait.Until(() => !pm.Running, "the postmaster to shut down");
        Assert.Contains("shutting down because \"restart_after_crash\" is off", pm.Log);
        Assert.Contains("abnormal postmaster shutdown", pm.Log);
        Assert.False(File.Exists(Path.Combine(pm.DataDir, "postmaster.pid")));
    }

    [Fact]
    public void A_crash_loop_is_bounded_and_ends_in_a_clean_stop_with_the_reason()
    {
        using var pm = Instance("crashloop", "crash_recovery = restart_all", "crash_restart_limit = 2",
            "worker.bad.entry = 'exit'", "worker.bad.argument = 'SEGV:100ms'", "backend_pool_size = 0");
        var r = pm.Start();
        pm.Track();
        Wait.Until(() => !pm.Running && pm.Log.Contains("postmaster is shut down"), "the postmaster to give up");
        var log = pm.Log;
        Assert.Equal(2, log.Split("all backends terminated; reinitializing").Length - 1);
        Assert.Contains("shutting down: 2 crash restarts within 60 s reached crash_restart_limit (2)", log);
        Assert.Contains("was terminated by signal 11: Segmentation fault", log);
        Assert.False(File.Exists(Path.Combine(pm.DataDir, "postmaster.pid")));
    }

    [Fact]
    public void A_live_old_backend_blocks_start_until_it_is_gone()
    {
        // 017_shm.pl (d): a backend that cannot notice the postmaster's death (here: stopped with SIGSTOP).
        using var pm = Instance("017", "worker.w.entry = 'idle'", "backend_pool_size = 0");
        pm.StartOk();
        var w = pm.WaitForBackends(b => b.Count == 1, "the worker").Single();
        var old = pm.LockFile!;
        ProcessControl.Signal(w.Pid, Signals.SIGSTOP);
        try
        {
            ProcessControl.Signal(old.Pid, Signals.SIGKILL);
            Wait.Until(() => !pm.Running, "the killed postmaster to release its lock");
            var refused = pm.Do("start");
            Assert.Equal(1, refused.ExitCode);
            Assert.Contains($"pre-existing shared memory block (key {old.ShmKey}, ID {old.ShmId}) is still in use", refused.Stderr);
            Assert.Contains($"It is still attached by process {w.Pid}.", refused.Stderr);
            var cleanup = pm.Do("cleanup");
            Assert.Equal(1, cleanup.ExitCode);
            Assert.Contains($"It is still attached by process {w.Pid}.", cleanup.Stderr);
        }
        finally
        {
            ProcessControl.Signal(w.Pid, Signals.SIGKILL);
        }
        Wait.Until(() => !ProcessControl.IsAlive(w.Pid), "the old backend to die");
        pm.StartOk();
        Assert.Equal(old.ShmKey, pm.LockFile!.ShmKey);
        Assert.Equal(0, pm.Stop().ExitCode);
    }

    [Fact]
    public void Cleanup_removes_what_a_killed_instance_left_without_starting()
    {
        using var pm = Instance("cleanup", "worker.w.entry = 'idle'", "backend_pool_size = 1");
        pm.StartOk();
        pm.WaitForBackends(b => b.Count == 1, "the worker");
        Wait.Until(() => pm.Backends().Count == 2, "the worker and the pool member");
        var pids = pm.Backends().Select(b => b.Pid).ToList();
        var old = pm.LockFile!;
        Assert.Equal(1, pm.Do("cleanup").ExitCode); // refuses while the server runs
        ProcessControl.Signal(old.Pid, Signals.SIGKILL);
        Wait.Until(() => pids.All(p => !ProcessControl.IsAlive(p)), "the backends to exit after the postmaster died");
        Assert.True(Leaks.SegmentExists("sysv", old.ShmKey!.Value, old.ShmId!.Value));
        var r = pm.Do("cleanup");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("cleaned up 3 objects", r.Stdout); // main segment, DSM control segment, lock file
        Assert.False(Leaks.SegmentExists("sysv", old.ShmKey!.Value, old.ShmId!.Value));
        Assert.False(File.Exists(Path.Combine(pm.DataDir, "postmaster.pid")));
        Assert.Contains("nothing to clean up", pm.Do("cleanup").Stdout);
    }
}
