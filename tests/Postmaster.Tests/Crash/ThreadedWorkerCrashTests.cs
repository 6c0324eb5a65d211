using Postmaster.Testing;
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
        using var pm = PostmasterCluster.StartNew(new ClusterOptions
        {
            Name = "thread-kill",
            Settings = { ["backend_pool_size"] = "0" },
            Workers = { new WorkerSpec("holder", "lock-hold", "thread:thread lock"), new WorkerSpec("other", "idle") },
        });
        pm.WaitForLog("is holding lock \"thread lock\" on thread \"lock holder\"");
        var before = pm.WaitForBackends(b => b.Count == 2, "two workers");
        var status = pm.Status();
        pm.Kill(before.Single(b => b.Name == "holder"));

        var after = pm.WaitForFullRestart(status);
        Assert.Equal(1, after.FullRestarts);
        Assert.NotEqual(status.SharedMemory!.Id, after.SharedMemory!.Id);
        pm.WaitForBackends(b => b.Count == 2 && b.All(x => before.All(y => y.Pid != x.Pid)), "two new workers");
        Assert.Contains("died holding 1 lightweight lock (thread lock), so shared memory may be corrupt", pm.ServerLog());
        pm.WaitUntil(() => pm.ServerLogLines().Count(l => l.Contains("is holding lock \"thread lock\" on thread")) == 2,
            "the lock to be taken again in the new segment");
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void A_worker_exiting_normally_with_a_lock_held_has_it_released_and_logged()
    {
        using var pm = PostmasterCluster.StartNew(new ClusterOptions
        {
            Name = "exit-held",
            Settings = { ["backend_pool_size"] = "0" },
            Workers = { new WorkerSpec("leaver", "lock-hold", "exit:left lock") },
        });
        pm.WaitForWorker("leaver", WorkerState.Done);
        var log = pm.ServerLog();
        Assert.Contains("is holding lock \"left lock\" and exits", log);
        Assert.Contains("WARNING:  lock \"left lock\"", log);
        Assert.Contains("was still held (Exclusive) when the backend exited; released", log);
        // Another backend gets the lock, and the exit was not a crash.
        pm.Spawn("lock-hold", "left lock", "next");
        pm.WaitForLog("background worker \"next\" is holding lock \"left lock\"");
        var status = pm.Status();
        Assert.Equal(0, status.FullRestarts);
        Assert.Equal(0, status.Reconciles);
        pm.Stop();
        pm.AssertNothingLeaked();
    }
}
