using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;

namespace Postmaster.Shmem.Segments;

/// <summary>What IPC_STAT tells about a System V segment.</summary>
public readonly record struct SysVSegmentInfo(long Size, int CreatorPid, int LastPid, long AttachCount, uint OwnerUid, uint Mode);

/// <summary>System V shared memory (shmget/shmat/shmdt/shmctl). Low-level: no naming or key policy.</summary>
internal static unsafe class SysVShm
{
    public const int SegmentMode = 0x180; // 0600

    /// <summary>
    /// shmget(key, size, IPC_CREAT|IPC_EXCL|0600). Returns the id, or -1 for a collision (EEXIST, EACCES, EIDRM:
    /// the key is taken); any other failure throws with PostgreSQL's DETAIL and errno hint.
    /// </summary>
    public static int CreateExclusive(int key, long size, bool huge)
    {
        int flags = Libc.IPC_CREAT | Libc.IPC_EXCL | SegmentMode | (huge ? Libc.SHM_HUGETLB : 0);
        int id = Libc.shmget(key, (nuint)size, flags);
        if (id >= 0)
            return id;
        int errno = Libc.Errno;
        if (errno is Errno.EEXIST or Errno.EACCES or Errno.EIDRM)
            return -1;
        throw new OsCallException("could not create shared memory segment", errno,
            detail: $"Failed system call was shmget(key={(uint)key}, size={size}, 0{Convert.ToString(flags, 8)}).",
            hint: HintFor(errno));
    }

    /// <summary>shmget(key, 0, 0): the id of an existing segment, or -1 when none (or not ours to see).</summary>
    public static int Lookup(int key)
    {
        int id = Libc.shmget(key, 0, 0);
        return id >= 0 ? id : -1;
    }

    /// <summary>IPC_STAT; false with the errno when it fails. (Not a nullable struct: Nullable&lt;T&gt; over a type of
    /// this assembly is not precompiled by ReadyToRun, and this runs in every backend's start-up.)</summary>
    public static bool TryStat(int id, out SysVSegmentInfo info, out int errno)
    {
        byte* buf = stackalloc byte[Libc.ShmidDsSize];
        if (Libc.shmctl(id, Libc.IPC_STAT, buf) != 0)
        {
            errno = Libc.Errno;
            info = default;
            return false;
        }
        errno = 0;
        info = new SysVSegmentInfo(
            *(long*)(buf + Libc.ShmidDsSegszOffset),
            *(int*)(buf + Libc.ShmidDsCpidOffset),
            *(int*)(buf + Libc.ShmidDsLpidOffset),
            *(long*)(buf + Libc.ShmidDsNattchOffset),
            *(uint*)(buf + Libc.ShmidDsUidOffset),
            *(ushort*)(buf + Libc.ShmidDsModeOffset));
        return true;
    }

    /// <summary>shmat; null with the errno on failure.</summary>
    public static byte* TryAttach(int id, bool readOnly, out int errno)
    {
        const int SHM_RDONLY = 0x1000; // 010000
        nint p = Libc.shmat(id, 0, readOnly ? SHM_RDONLY : 0);
        if (p == -1)
        {
            errno = Libc.Errno;
            return null;
        }
        errno = 0;
        return (byte*)p;
    }

    /// <summary>shmdt; 0 or the errno.</summary>
    public static int Detach(byte* address) => Libc.shmdt((nint)address) == 0 ? 0 : Libc.Errno;

    /// <summary>IPC_RMID: the segment goes away once the last process detaches. 0 or the errno.</summary>
    public static int Remove(int id) => Libc.shmctl(id, Libc.IPC_RMID, null) == 0 ? 0 : Libc.Errno;

    /// <summary>PostgreSQL's hints for shmget failures.</summary>
    public static string? HintFor(int errno) => errno switch
    {
        Errno.EINVAL => "This error usually means that postmaster's request for a shared memory segment exceeded your kernel's " +
                        "SHMMAX parameter, or possibly that it is less than your kernel's SHMMIN parameter.",
        Errno.ENOMEM => "This error usually means that postmaster's request for a shared memory segment exceeded your kernel's " +
                        "SHMALL parameter. You might need to reconfigure the kernel with larger SHMALL, or reduce " +
                        "\"shared_memory_size\" or \"max_backends\".",
        Errno.ENOSPC => "This error does *not* mean that you have run out of disk space. It occurs either if all available " +
                        "shared memory IDs have been taken, in which case you need to raise the SHMMNI parameter in your kernel, " +
                        "or because the system's overall limit for shared memory has been reached.",
        _ => null,
    };
}
