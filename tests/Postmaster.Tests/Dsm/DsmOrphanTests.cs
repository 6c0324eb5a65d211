using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Os;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Dsm;

/// <summary>
/// Startup orphan cleanup after a hard crash: a child creates segments (one pinned, one stuck in the "creating"
/// window) and is SIGKILLed, the supervisor "dies" without destroying anything, and cleanup with the old control
/// handle must remove every object: what the old control segment lists, and what only the instance tag reveals.
/// /dev/shm, /proc/sysvipc/shm and pm_dynshmem are checked directly before and after.
/// </summary>
[Collection(DsmProcessCollection.Name)]
public sealed class DsmOrphanTests
{
    public static TheoryData<DsmKind> Types => new() { DsmKind.Posix, DsmKind.SysV, DsmKind.Mmap };

    public enum ControlState
    {
        Intact,
        Gone,
        Corrupt,
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Cleanup_with_the_old_control_segment_removes_every_orphan(DsmKind kind) =>
        CrashThenCleanup((DsmType)kind, ControlState.Intact);

    [Theory]
    [MemberData(nameof(Types))]
    public void Cleanup_finds_every_orphan_by_tag_when_the_control_segment_is_gone(DsmKind kind) =>
        CrashThenCleanup((DsmType)kind, ControlState.Gone);

    [Fact]
    public void Cleanup_finds_every_orphan_by_tag_when_the_control_segment_is_corrupt() =>
        CrashThenCleanup(DsmType.Posix, ControlState.Corrupt);

    [Fact]
    public void Cleanup_of_a_data_directory_with_no_orphans_removes_nothing()
    {
        var dir = Directory.CreateTempSubdirectory("pmdsm-clean-");
        try
        {
            var config = DsmConfig.For(DsmType.Mmap, dir.FullName, FileStat.TryStat(dir.FullName)!.Value);
            Assert.Equal(new DsmCleanupSummary(false, false, 0, 0, 0), DsmOrphanCleanup.Run(config, new DsmHandle(12345)));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static void CrashThenCleanup(DsmType type, ControlState control)
    {
        using var pm = new DsmTestInstance($"orphans-{control}", type);
        var names = pm.Config.Names;
        var impl = (DsmImplementation)type;
        var handles = new List<uint>();
        using (var child = pm.StartChild(2))
        {
            child.WriteLine("create 10000");
            handles.Add(DsmHandle.Parse(child.WaitForLine("created").Split(' ')[1]).Value);
            child.WriteLine("create 20000");
            handles.Add(DsmHandle.Parse(child.WaitForLine("created").Split(' ')[1]).Value);
            child.WriteLine($"pin {handles[1]}");
            child.WaitForLine("pinned");
            child.WriteLine("create-stuck 30000");
            handles.Add(DsmHandle.Parse(child.WaitForLine("creating").Split(' ')[1]).Value);
            Assert.Equal(DsmItemState.Creating, pm.Row(new DsmHandle(handles[2]))!.State);
            child.Kill(Signals.SIGKILL);
            child.WaitForExit();
        }
        // An object of this instance that no table lists (e.g. left by a run whose control segment was lost).
        const uint Untracked = 0x7FFF_FFF0;
        Assert.True(DsmOs.TryCreate(names, impl, DsmObjectKind.Segment, Untracked, 4096 + DsmSegmentHeader.Size, out var stray));
        Assert.Equal(0, DsmOs.Detach(impl, stray));
        if (type == DsmType.Mmap)
            File.WriteAllText(Path.Combine(pm.Config.DynShmemDirectory, "leftover.tmp"), "x");

        var oldControl = pm.AbandonControl(); // the supervisor "dies": nothing is destroyed
        var all = handles.Append(Untracked).ToList();
        Assert.All(all, h => Assert.True(Exists(pm, impl, DsmObjectKind.Segment, h), $"segment {h} should exist before cleanup"));
        Assert.True(Exists(pm, impl, DsmObjectKind.Control, oldControl.Value));
        if (control == ControlState.Gone)
            Assert.Equal(0, DsmOs.Destroy(names, impl, DsmObjectKind.Control, oldControl.Value, -1));
        if (control == ControlState.Corrupt)
        {
            using var raw = Postmaster.Shmem.Segments.MappedSegment.AttachPosix($"/pm.{pm.Config.Tag}.ctl.{oldControl}")!;
            raw.Region.Ref<int>(DsmSegmentHeader.Size + 16) = int.MaxValue; // item count beyond capacity
        }

        var summary = DsmOrphanCleanup.Run(pm.Config, oldControl, pm.Log);

        Assert.Equal(0, summary.Failures);
        Assert.Equal(control != ControlState.Gone, summary.ControlSegmentFound);
        Assert.Equal(control == ControlState.Corrupt, summary.ControlSegmentCorrupt);
        int extraFile = type == DsmType.Mmap ? 1 : 0;
        if (control == ControlState.Intact)
        {
            Assert.Equal(handles.Count + 1, summary.ListedRemoved);        // three segments and the control segment
            Assert.Equal(1 + extraFile, summary.UntrackedRemoved);
            Assert.All(handles, h => Assert.True(pm.Log.Contains(Postmaster.Shmem.ShmemLogLevel.Debug,
                $"cleaning up orphaned dynamic shared memory with ID {h} (reference count")));
        }
        else
        {
            Assert.Equal(control == ControlState.Corrupt ? 1 : 0, summary.ListedRemoved);
            Assert.Equal(handles.Count + 1 + extraFile, summary.UntrackedRemoved);
        }
        Assert.All(all, h => Assert.False(Exists(pm, impl, DsmObjectKind.Segment, h), $"segment {h} survived cleanup"));
        Assert.False(Exists(pm, impl, DsmObjectKind.Control, oldControl.Value));
        Assert.Empty(Directory.GetFiles("/dev/shm", $"pm.{pm.Config.Tag}.*"));
        if (Directory.Exists(pm.Config.DynShmemDirectory))
            Assert.Empty(Directory.GetFiles(pm.Config.DynShmemDirectory));
        Assert.Empty(pm.Tagged());
        Assert.Contains("orphaned dynamic shared memory objects", summary.Describe());
    }

    /// <summary>Checks the OS directly: /dev/shm, /proc/sysvipc/shm, or the pm_dynshmem directory.</summary>
    private static bool Exists(DsmTestInstance pm, DsmImplementation impl, DsmObjectKind kind, uint handle)
    {
        var names = pm.Config.Names;
        return impl switch
        {
            DsmImplementation.SysV => TestIpc.SysVKeys().Contains(names.SysVKey(kind, handle)),
            DsmImplementation.Posix => File.Exists("/dev/shm" + names.Describe(impl, kind, handle)),
            _ => File.Exists(names.Describe(impl, kind, handle)),
        };
    }
}
