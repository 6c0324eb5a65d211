using Postmaster.Shmem.Segments;

namespace Postmaster.Tests.Support;

/// <summary>IPC objects a test makes on purpose (foreign segments, extra attachments), through the library's typed API.</summary>
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
}
