using Postmaster.Shmem.Segments;

namespace Postmaster.Tests.Support;

/// <summary>IPC objects a test makes or looks for on purpose (foreign segments, extra attachments), through the
/// library's typed API and /proc/sysvipc/shm.</summary>
public static class TestIpc
{
    public static void RemoveSysV(int id)
    {
        using var seg = MappedSegment.AttachSysV(id);
        seg?.Destroy();
    }

    /// <summary>Inode of a directory: the first SysV key (and POSIX name suffix) its postmaster tries.</summary>
    public static long FirstKeyFor(string dir) =>
        (long)(Postmaster.Shmem.Os.FileStat.TryStat(dir)!.Value.Inode & 0x7FFF_FFFF);

    /// <summary>Whether a main segment exists under its key (the harness's own check: a SysV segment removed but still
    /// mapped by an exiting process no longer counts).</summary>
    public static bool SegmentExists(string type, long key, long id) => Postmaster.Testing.Internal.InstanceIpc.MainSegmentExists(type, key, id);

    /// <summary>ids of all SysV segments on the machine.</summary>
    public static HashSet<long> SysVIds() => SysVRows().Select(f => long.Parse(f[1])).ToHashSet();

    /// <summary>keys of all SysV segments on the machine.</summary>
    public static HashSet<long> SysVKeys() => SysVRows().Select(f => long.Parse(f[0])).ToHashSet();

    /// <summary>The rows of /proc/sysvipc/shm (key shmid perms size cpid lpid nattch uid ...).</summary>
    private static IEnumerable<string[]> SysVRows() =>
        File.ReadLines("/proc/sysvipc/shm").Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(f => f.Length > 6);
}
