using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;

namespace Postmaster.Shmem.Segments;

/// <summary>What IPC_STAT tells about a System V segment (times in Unix seconds; <see cref="Mode"/> as the kernel
/// reports it, permission bits plus SHM_DEST/SHM_LOCKED).</summary>
internal readonly record struct SysVSegmentInfo(long Size, int CreatorPid, int LastPid, long AttachCount, uint OwnerUid, uint Mode,
    int Key = 0, uint CreatorUid = 0, long AttachTime = 0, long ChangeTime = 0)
{
    /// <summary>The permission bits (rwxrwxrwx).</summary>
    public uint Permissions => Mode & 0x1FF;
}

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
    public static int Lookup(int key) => Lookup(key, out _);

    /// <summary>shmget(key, 0, 0): the id, or -1 with the errno (ENOENT: no segment has the key; EACCES: one does,
    /// but we may not see it).</summary>
    public static int Lookup(int key, out int errno)
    {
        int id = Libc.shmget(key, 0, 0);
        errno = id >= 0 ? 0 : Libc.Errno;
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
            *(ushort*)(buf + Libc.ShmidDsModeOffset),
            *(int*)(buf + Libc.ShmidDsKeyOffset),
            *(uint*)(buf + Libc.ShmidDsCuidOffset),
            *(long*)(buf + Libc.ShmidDsAtimeOffset),
            *(long*)(buf + Libc.ShmidDsCtimeOffset));
        return true;
    }

    /// <summary>
    /// Whether a segment is provably this user's, from IPC_STAT alone, before anything attaches it (PostgreSQL's
    /// PGSharedMemoryAttach): owner and creator are this effective uid, and no group or other permission bit is set
    /// (we create every segment 0600; a segment someone else could write is not trusted even when it is ours). A
    /// root process is no exception: another user's segment is never attached, even though root could.
    /// </summary>
    public static bool IsOwnedByUs(in SysVSegmentInfo info)
    {
        uint me = Libc.geteuid();
        return info.OwnerUid == me && info.CreatorUid == me && (info.Permissions & 0x3F) == 0;
    }

    /// <summary>IPC_SET: gives segment <paramref name="id"/> owner <paramref name="uid"/> and permissions
    /// <paramref name="mode"/> (tests make "another user's" segment with it; needs root or the owner). 0 or errno.</summary>
    public static int SetOwner(int id, uint uid, uint gid, uint mode)
    {
        byte* buf = stackalloc byte[Libc.ShmidDsSize];
        if (Libc.shmctl(id, Libc.IPC_STAT, buf) != 0)
            return Libc.Errno;
        *(uint*)(buf + Libc.ShmidDsUidOffset) = uid;
        *(uint*)(buf + Libc.ShmidDsGidOffset) = gid;
        *(ushort*)(buf + Libc.ShmidDsModeOffset) = (ushort)(mode & 0x1FF);
        return Libc.shmctl(id, Libc.IPC_SET, buf) == 0 ? 0 : Libc.Errno;
    }

    /// <summary>shmget(key, size, IPC_CREAT|IPC_EXCL|0600) without attaching: the id, or -1 with the errno (tests).</summary>
    public static int CreateUnattached(int key, long size, out int errno)
    {
        int id = Libc.shmget(key, (nuint)size, Libc.IPC_CREAT | Libc.IPC_EXCL | SegmentMode);
        errno = id < 0 ? Libc.Errno : 0;
        return id;
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
