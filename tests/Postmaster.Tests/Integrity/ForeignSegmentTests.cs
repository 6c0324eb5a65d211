using Postmaster.Shmem;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Integrity;

/// <summary>
/// A SysV segment of another user at a key we probe is skipped on what IPC_STAT says, without ever being attached
/// (PostgreSQL's PGSharedMemoryAttach): its shm_lpid and shm_atime stay 0, which they would not after a shmat. The
/// "other user's" segment is made by giving a fresh segment another owner with IPC_SET, which needs root; without
/// root there is no way to make one and the test has nothing to check.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class ForeignSegmentTests
{
    private const uint OtherUid = 54321;

    [Fact]
    public void Start_and_cleanup_skip_another_users_segment_at_the_first_key_without_attaching_it()
    {
        using var pm = Clusters.Bare("foreign-uid");
        long firstKey = TestIpc.FirstKeyFor(pm.DataDirectory);
        int id = CreateForeign((int)firstKey);
        if (id < 0)
            return; // not root: another user's segment cannot be made here
        try
        {
            pm.Start("-c", "shared_memory_type=sysv");
            Assert.Equal(firstKey + 1, pm.LockFile()!.ShmKey);
            pm.Stop();
            var cleanup = pm.Run("cleanup");
            Assert.True(cleanup.ExitCode == 0, cleanup.ToString());
            AssertNeverAttached(id);
            Assert.True(TestIpc.SegmentExists("sysv", firstKey, id), "the foreign segment is left alone");
        }
        finally
        {
            SysVShm.Remove(id);
        }
    }

    [Fact]
    public void Dsm_orphan_cleanup_skips_another_users_segment_without_attaching_it()
    {
        var dir = Directory.CreateTempSubdirectory("pmtest-foreign-dsm-");
        int id = -1;
        try
        {
            var config = DsmConfig.For(DsmType.SysV, dir.FullName, FileStat.TryStat(dir.FullName)!.Value);
            const uint Handle = 0x7FFF_FF00;
            int key = config.Names.SysVKey(DsmObjectKind.Control, Handle); // where our control segment would be
            id = CreateForeign(key);
            if (id < 0)
                return; // not root
            var evidence = new DsmOrphanEvidence();
            evidence.Add(Environment.ProcessId, 0); // even a pid that "was ours" does not make another user's segment ours
            var summary = DsmOrphanCleanup.Run(config, new DsmHandle(Handle), null, evidence);
            Assert.False(summary.ControlSegmentFound);
            Assert.Equal(0, summary.UntrackedRemoved);
            Assert.Equal(DsmOs.SysVProbe.NotOurs, DsmOs.ProbeSysV(id, config.Tag, out _, out _));
            AssertNeverAttached(id);
        }
        finally
        {
            if (id >= 0)
                SysVShm.Remove(id);
            dir.Delete(recursive: true);
        }
    }

    /// <summary>A segment at <paramref name="key"/> owned by <see cref="OtherUid"/> (mode 0600), never attached; -1
    /// when this process may not give it away (not root: the segment is removed again).</summary>
    private static int CreateForeign(int key)
    {
        int id = SysVShm.CreateUnattached(key, 4096, out int errno);
        Assert.True(id >= 0, $"could not create a test segment at key {key}: errno {errno}");
        int err = SysVShm.SetOwner(id, OtherUid, OtherUid, 0x180);
        if (err == 0)
            return id;
        SysVShm.Remove(id);
        Assert.True(err == Errno.EPERM, $"IPC_SET failed: errno {err}");
        return -1;
    }

    private static void AssertNeverAttached(int id)
    {
        Assert.True(SysVShm.TryStat(id, out var info, out int errno), $"IPC_STAT failed: errno {errno}");
        Assert.Equal(OtherUid, info.OwnerUid);
        Assert.Equal(0, info.LastPid);   // shmat and shmdt set it to the caller's pid
        Assert.Equal(0, info.AttachTime); // shmat sets it
    }
}
