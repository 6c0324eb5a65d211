using Postmaster.Shmem;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;
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
        using var pm = new PmInstance("stale");
        Assert.Equal(0, pm.Init().ExitCode);
        int deadPid = DeadPid();
        File.WriteAllText(Path.Combine(pm.DataDir, "postmaster.pid"), $"{deadPid}\n{pm.DataDir}\n1\n0\n\n\n         0          0\nready   \n");
        pm.StartOk();
        Assert.NotEqual(deadPid, pm.Pid);
        Assert.Contains($"removing stale lock file \"{Path.Combine(pm.DataDir, "postmaster.pid")}\" of postmaster PID {deadPid}", pm.Log);
        Assert.Equal(0, pm.Stop().ExitCode);
    }

    [Fact]
    public void Lock_file_naming_a_live_unrelated_pid_does_not_block_start()
    {
        // PostgreSQL would refuse (kill(pid, 0) succeeds); the kernel lock knows nobody holds the file.
        using var pm = new PmInstance("stalelive");
        Assert.Equal(0, pm.Init().ExitCode);
        File.WriteAllText(Path.Combine(pm.DataDir, "postmaster.pid"), $"1\n{pm.DataDir}\n1\n");
        pm.StartOk();
        Assert.Equal(0, pm.Stop().ExitCode);
    }

    [Theory]
    [InlineData("sysv")]
    [InlineData("posix")]
    public void Foreign_segment_at_the_first_key_is_skipped(string type)
    {
        using var pm = new PmInstance("foreign-" + type);
        Assert.Equal(0, pm.Init().ExitCode);
        long firstKey = TestIpc.FirstKeyFor(pm.DataDir);
        using var foreign = type == "sysv"
            ? MappedSegment.CreateSysV((int)firstKey, 1024)
            : MappedSegment.CreatePosix(MainSegment.PosixName(firstKey), 1024, firstKey);
        Assert.NotNull(foreign);
        try
        {
            pm.StartOk("-c", "shared_memory_type=" + type);
            Assert.Equal(firstKey + 1, pm.LockFile!.ShmKey);
            var r = pm.Do("restart");
            pm.Track();
            Assert.Equal(0, r.ExitCode);
            Assert.Equal(firstKey + 1, pm.LockFile!.ShmKey); // the key is kept across restarts
            Assert.Equal(0, pm.Stop().ExitCode);
            Assert.True(Leaks.SegmentExists(type, firstKey, foreign!.Id), "the foreign segment is left alone");
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
        using var pm = new PmInstance($"inuse-{type}-{keepLockFile}");
        pm.InitBare();
        pm.StartOk("-c", "shared_memory_type=" + type);
        var c = pm.LockFile!;
        long key = c.ShmKey!.Value, id = c.ShmId!.Value;
        // An "old backend": this test process attaches the segment, then the postmaster is SIGKILLed.
        var attached = type == "sysv" ? MappedSegment.AttachSysV((int)id, key) : MappedSegment.AttachPosix(MainSegment.PosixName(key), key);
        Assert.NotNull(attached);
        try
        {
            var backends = pm.Backends().Select(b => b.Pid).ToList();
            Assert.True(ProcessControl.Signal(c.Pid, Signals.SIGKILL));
            Wait.Until(() => !pm.Running, "the killed postmaster to release its lock");
            Wait.Until(() => backends.All(p => !ProcessControl.IsAlive(p)), "its backends to leave by themselves");
            if (!keepLockFile)
                File.Delete(Path.Combine(pm.DataDir, "postmaster.pid"));

            var refused = pm.Do("start", "-c", "shared_memory_type=" + type);
            Assert.Equal(1, refused.ExitCode);
            Assert.Contains($"FATAL:  pre-existing shared memory block (key {key}, ID {id}) is still in use", refused.Stderr);
            Assert.Contains($"It is still attached by process {Environment.ProcessId}.", refused.Stderr);
            Assert.Contains($"HINT:  Terminate any old server processes associated with data directory \"{pm.DataDir}\".", refused.Stderr);
        }
        finally
        {
            attached!.Dispose();
        }
        pm.StartOk("-c", "shared_memory_type=" + type);
        Assert.Equal(key, pm.LockFile!.ShmKey); // the dead instance's key is recycled
        Assert.Contains($"removing shared memory block (key {key}, ID {id})", pm.Log);
        Assert.Equal(0, pm.Stop().ExitCode);
        Assert.False(Leaks.SegmentExists(type, key, id));
    }

    [Theory]
    [InlineData("sysv")]
    [InlineData("posix")]
    public void Start_after_SIGKILL_of_the_postmaster_removes_the_orphan_and_reuses_the_key(string type)
    {
        using var pm = new PmInstance("kill9-" + type);
        pm.InitBare();
        pm.StartOk("-c", "shared_memory_type=" + type);
        var c = pm.LockFile!;
        var backends = pm.Backends().Select(b => b.Pid).ToList();
        Assert.True(ProcessControl.Signal(c.Pid, Signals.SIGKILL));
        Wait.Until(() => !pm.Running, "the killed postmaster to release its lock");
        Wait.Until(() => backends.All(p => !ProcessControl.IsAlive(p)), "its backends to leave by themselves");
        Assert.True(Leaks.SegmentExists(type, c.ShmKey!.Value, c.ShmId!.Value), "SIGKILL leaves the segment behind");
        pm.StartOk("-c", "shared_memory_type=" + type);
        Assert.Equal(c.ShmKey, pm.LockFile!.ShmKey);
        Assert.False(type == "sysv" && Leaks.SysVIds().Contains(c.ShmId!.Value) && c.ShmId != pm.LockFile!.ShmId,
            "the old SysV id is gone");
        Assert.Equal(0, pm.Stop().ExitCode);
    }

    /// <summary>A pid that certainly belongs to no process: one that just exited and was reaped.</summary>
    private static int DeadPid()
    {
        using var p = System.Diagnostics.Process.Start("/bin/true")!;
        p.WaitForExit();
        return p.Id;
    }
}
