using Postmaster.Shmem.Os;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Crash;

/// <summary>Crash accounting for multi-threaded workers: a lock held on any thread of a process counts.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class ThreadedWorkerCrashTests
{
    [Fact]
    public void SIGKILL_of_a_worker_whose_second_thread_holds_a_lock_is_a_full_restart()
    {
        using var pm = new PmInstance("thread-kill");
        pm.InitBare("worker.holder.entry = 'lock-hold'", "worker.holder.argument = 'thread:thread lock'",
            "worker.other.entry = 'idle'", "backend_pool_size = 0");
        pm.StartOk();
        pm.WaitForLog("is holding lock \"thread lock\" on thread \"lock holder\"");
        var before = pm.WaitForBackends(b => b.Count == 2, "two workers");
        long idBefore = pm.LockFile!.ShmId!.Value;
        ProcessControl.Signal(before.Single(b => b.Name == "holder").Pid, Signals.SIGKILL);

        pm.WaitForLog("all backends terminated; reinitializing");
        pm.WaitForBackends(b => b.Count == 2 && b.All(x => before.All(y => y.Pid != x.Pid)), "two new workers");
        Assert.NotEqual(idBefore, pm.LockFile!.ShmId);
        Assert.Contains("died holding 1 lightweight lock (thread lock), so shared memory may be corrupt", pm.Log);
        pm.WaitForLog("is holding lock \"thread lock\" on thread \"lock holder\""); // usable again after the rebuild
        Assert.Equal(0, pm.Stop().ExitCode);
    }

    [Fact]
    public void A_worker_exiting_normally_with_a_lock_held_has_it_released_and_logged()
    {
        using var pm = new PmInstance("exit-held");
        pm.InitBare("worker.leaver.entry = 'lock-hold'", "worker.leaver.argument = 'exit:left lock'", "backend_pool_size = 0");
        pm.StartOk();
        pm.WaitForLog("is holding lock \"left lock\" and exits");
        pm.WaitForLog("WARNING:  lock \"left lock\"");
        Assert.Contains("was still held (Exclusive) when the backend exited; released", pm.Log);
        // Another backend gets the lock, and the exit was not a crash.
        Assert.Equal(0, pm.Do("spawn", "--worker", "lock-hold", "--argument", "left lock", "--name", "next").ExitCode);
        pm.WaitForLog("background worker \"next\" is holding lock \"left lock\"");
        Assert.DoesNotContain("terminating any other active backends", pm.Log);
        Assert.DoesNotContain("reinitializing", pm.Log);
        Assert.Equal(0, pm.Stop().ExitCode);
    }
}
