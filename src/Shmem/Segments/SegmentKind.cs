namespace Postmaster.Shmem.Segments;

/// <summary>How a segment is backed by the operating system.</summary>
internal enum SegmentKind
{
    /// <summary>System V: shmget/shmat, named by a numeric key; the kernel counts attached processes.</summary>
    SysV,

    /// <summary>POSIX: shm_open under /dev/shm, mapped with mmap; attached processes hold a shared OFD lock.</summary>
    Posix,

    /// <summary>A regular file (under the data directory) mapped with mmap.</summary>
    Mmap,
}
