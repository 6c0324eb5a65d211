using Postmaster.Shmem.Segments;

namespace Postmaster.Tests.Support;

/// <summary>Checks for, and removes, IPC objects a test instance may have left.</summary>
public static class Leaks
{
    /// <summary>Whether the segment still exists under its key. A SysV segment already removed (IPC_RMID) but still
    /// mapped by an exiting process shows with key 0 until the last detach: that one no longer counts.</summary>
    public static bool SegmentExists(string type, long key, long id) => type == "posix"
        ? File.Exists("/dev/shm" + Postmaster.Shmem.MainSegment.PosixName(key))
        : SysVByKey().TryGetValue(key, out var seg) && seg.Id == id;

    public static void RemoveSegment(string type, long key, long id)
    {
        if (type == "posix")
            File.Delete("/dev/shm" + Postmaster.Shmem.MainSegment.PosixName(key));
        else
            TestIpc.RemoveSysV((int)id);
    }

    /// <summary>ids of all SysV segments on the machine (/proc/sysvipc/shm).</summary>
    public static HashSet<long> SysVIds() =>
        File.ReadLines("/proc/sysvipc/shm").Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length > 2)
            .Select(f => long.Parse(f[1]))
            .ToHashSet();

    /// <summary>key → (id, nattch) of all SysV segments.</summary>
    public static Dictionary<long, (long Id, long Attached)> SysVByKey() =>
        File.ReadLines("/proc/sysvipc/shm").Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length > 6)
            .GroupBy(f => long.Parse(f[0]))
            .ToDictionary(g => g.Key, g => (long.Parse(g.First()[1]), long.Parse(g.First()[6])));
}
