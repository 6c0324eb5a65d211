using Postmaster.Shmem;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Lifecycle;

/// <summary>PostgreSQL's 017_shm.pl and the lock-file interlock, for both main-segment types.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class InterlockTests
{
    [Fact]
    public void Stale_lock_file_of_a_dead_pid_is_replaced()
    {
        using var pm = Clusters.Defaults("stale");
        int deadPid = DeadPid();
        File.WriteAllText(Path.Combine(pm.DataDirectory, "postmaster.pid"), $"{deadPid}\n{pm.DataDirectory}\n1\n0\n\n\n         0          0\nready   \n");
        pm.Start();
        Assert.NotEqual(deadPid, pm.PostmasterPid);
        Assert.Contains($"removing stale lock file \"{Path.Combine(pm.DataDirectory, "postmaster.pid")}\" of postmaster PID {deadPid}", pm.ServerLog());
        pm.Stop();
    }

    [Fact]
    public void Lock_file_naming_a_live_unrelated_pid_does_not_block_start()
    {
        // PostgreSQL would refuse (kill(pid, 0) succeeds); the kernel lock knows nobody holds the file.
        using var pm = Clusters.Defaults("stalelive");
        File.WriteAllText(Path.Combine(pm.DataDirectory, "postmaster.pid"), $"1\n{pm.DataDirectory}\n1\n");
        pm.Start();
        pm.Stop();
    }

    [Theory]
    [InlineData("sysv")]
    [InlineData("posix")]
    public void Foreign_segment_at_the_first_key_is_skipped(string type)
    {
        using var pm = Clusters.Defaults("foreign-" + type);
        long firstKey = TestIpc.FirstKeyFor(pm.DataDirectory);
        using var foreign = type == "sysv"
            ? MappedSegment.CreateSysV((int)firstKey, 1024)
            : MappedSegment.CreatePosix(MainSegment.PosixName(firstKey), 1024, firstKey);
        Assert.NotNull(foreign);
        try
        {
            pm.Start("-c", "shared_memory_type=" + type);
            Assert.Equal(firstKey + 1, pm.LockFile()!.ShmKey);
            var r = pm.Run("restart");
            Assert.Equal(0, r.ExitCode);
            Assert.Equal(firstKey + 1, pm.LockFile()!.ShmKey); // the key is kept across restarts
            pm.Stop();
            Assert.True(TestIpc.SegmentExists(type, firstKey, foreign!.Id), "the foreign segment is left alone");
        }
        finally
        {
            foreign!.Destroy();
        }
    }

    [Theory]
    [InlineData("sysv", true)]
    [InlineData("sysv", false)]
    [InlineData("posix", true)]
    [InlineData("posix", false)]
    public void Segment_still_attached_after_a_crash_blocks_start_until_released(string type, bool keepLockFile)
    {
        using var pm = Clusters.Bare($"inuse-{type}-{keepLockFile}");
        pm.Start("-c", "shared_memory_type=" + type);
        var c = pm.LockFile()!;
        long key = c.ShmKey!.Value, id = c.ShmId!.Value;
        // An "old backend": this test process attaches the segment, then the postmaster is SIGKILLed.
        var attached = type == "sysv" ? MappedSegment.AttachSysV((int)id, key) : MappedSegment.AttachPosix(MainSegment.PosixName(key), key);
        Assert.NotNull(attached);
        try
        {
            var backends = pm.Status().Backends.Select(b => b.Pid!.Value).ToList();
            pm.KillPostmaster();
            pm.WaitUntilStopped();
            Wait.Until(() => backends.All(p => !ProcessControl.IsAlive(p)), "its backends to leave by themselves");
            if (!keepLockFile)
                File.Delete(Path.Combine(pm.DataDirectory, "postmaster.pid"));

            var refused = pm.Run("start", "-c", "shared_memory_type=" + type);
            Assert.Equal(1, refused.ExitCode);
            Assert.Contains($"FATAL:  pre-existing shared memory block (key {key}, ID {id}) is still in use", refused.Stderr);
            Assert.Contains($"It is still attached by process {Environment.ProcessId}.", refused.Stderr);
            Assert.Contains($"HINT:  Terminate any old server processes associated with data directory \"{pm.DataDirectory}\".", refused.Stderr);
        }
        finally
        {
            attached!.Dispose();
        }
        pm.Start("-c", "shared_memory_type=" + type);
        Assert.Equal(key, pm.LockFile()!.ShmKey); // the dead instance's key is recycled
        Assert.Contains($"removing shared memory block (key {key}, ID {id})", pm.ServerLog());
        pm.Stop();
        Assert.False(TestIpc.SegmentExists(type, key, id));
    }

    [Theory]
    [InlineData("sysv")]
    [InlineData("posix")]
    public void Start_after_SIGKILL_of_the_postmaster_removes_the_orphan_and_reuses_the_key(string type)
    {
        using var pm = Clusters.Bare("kill9-" + type);
        pm.Start("-c", "shared_memory_type=" + type);
        var c = pm.LockFile()!;
        var backends = pm.Status().Backends.Select(b => b.Pid!.Value).ToList();
        pm.KillPostmaster();
        pm.WaitUntilStopped();
        Wait.Until(() => backends.All(p => !ProcessControl.IsAlive(p)), "its backends to leave by themselves");
        Assert.True(TestIpc.SegmentExists(type, c.ShmKey!.Value, c.ShmId!.Value), "SIGKILL leaves the segment behind");
        pm.Start("-c", "shared_memory_type=" + type);
        Assert.Equal(c.ShmKey, pm.LockFile()!.ShmKey);
        Assert.False(type == "sysv" && TestIpc.SysVIds().Contains(c.ShmId!.Value) && c.ShmId != pm.LockFile()!.ShmId,
            "the old SysV id is gone");
        pm.Stop();
    }

    /// <summary>A pid that certainly belongs to no process: one that just exited and was reaped.</summary>
    private static int DeadPid()
    {
        using var p = System.Diagnostics.Process.Start("/bin/true")!;
        p.WaitForExit();
        return p.Id;
    }
}
