using System.Runtime.CompilerServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Segments;

namespace Postmaster.Shmem.Dsm;

/// <summary>An OS-backed DSM object mapped in this process: whole object (header included).</summary>
internal readonly unsafe struct DsmMapping
{
    public DsmMapping(byte* address, long size, int sysVId)
    {
        Address = address;
        Size = size;
        SysVId = sysVId;
    }

    public byte* Address { get; }

    /// <summary>Bytes mapped: the whole object, <see cref="DsmSegmentHeader"/> included.</summary>
    public long Size { get; }

    /// <summary>The shmid for SysV objects, -1 otherwise.</summary>
    public int SysVId { get; }

    public ref DsmSegmentHeader Header => ref *(DsmSegmentHeader*)Address;

    public ShmemRegion User => new(Address + DsmSegmentHeader.Size, Size - DsmSegmentHeader.Size);
}

/// <summary>
/// The OS primitives of dynamic shared memory, one function per implementation behind one switch (PostgreSQL's
/// dsm_impl.c): create, attach, detach, destroy. No bookkeeping and no locking: <see cref="DsmSession"/> and
/// <see cref="DsmControl"/> decide when to call what.
/// <para>Contract: <see cref="TryCreate"/> returns false for exactly one expected failure, a name or key collision
/// (the caller retries with another handle), and throws <see cref="OsCallException"/> for every other, after undoing
/// its own work (close, unlink, IPC_RMID) so that nothing is left. <see cref="TryAttach"/> returns false when the
/// object does not exist. <see cref="Detach"/> and <see cref="Destroy"/> return 0 or the errno and never throw
/// (cleanup paths log and carry on). Descriptors never leave a method: each is closed before it returns, the mapping
/// keeps the object alive. POSIX and mmap space is reserved with posix_fallocate at creation, so a full /dev/shm or
/// file system is an error now, never a SIGBUS on first touch later. The header of a POSIX or mmap object is written
/// with pwrite right after the space is reserved, so creation touches no mapped page (measured on ext4: a write
/// through the mapping costs a page fault plus an unwritten-extent conversion, several times a pwrite, and a pwrite
/// before posix_fallocate makes the reservation slower); a SysV segment has no descriptor, so its header is written
/// through the mapping (one page fault: the price of recognising SysV orphans).</para>
/// </summary>
internal static unsafe class DsmOs
{
    public const int ObjectMode = 0x180; // 0600

    /// <summary>Creates and maps a new object of <paramref name="size"/> bytes exclusively and writes its
    /// <see cref="DsmSegmentHeader"/> (the user's bytes are size - <see cref="DsmSegmentHeader.Size"/>). False on a
    /// collision.</summary>
    public static bool TryCreate(DsmNames names, DsmImplementation impl, DsmObjectKind kind, uint handle, long size,
        out DsmMapping mapping) => impl switch
    {
        DsmImplementation.Posix or DsmImplementation.Mmap => CreateFileObject(names, impl, kind, handle, size, out mapping),
        DsmImplementation.SysV => CreateSysV(names, kind, handle, size, out mapping),
        _ => throw new ArgumentOutOfRangeException(nameof(impl), impl, "not an OS-backed implementation"),
    };

    /// <summary>Maps an existing object; its size comes from the object (fstat / IPC_STAT). For SysV,
    /// <paramref name="sysVId"/> is the shmid when known, else -1 (looked up by key). False when it does not exist.</summary>
    public static bool TryAttach(DsmNames names, DsmImplementation impl, DsmObjectKind kind, uint handle, int sysVId,
        out DsmMapping mapping) => impl switch
    {
        DsmImplementation.Posix or DsmImplementation.Mmap => AttachFileObject(names, impl, kind, handle, out mapping),
        DsmImplementation.SysV => AttachSysV(names, kind, handle, sysVId, out mapping),
        _ => throw new ArgumentOutOfRangeException(nameof(impl), impl, "not an OS-backed implementation"),
    };

    /// <summary>Unmaps (munmap / shmdt). 0 or the errno.</summary>
    public static int Detach(DsmImplementation impl, in DsmMapping mapping) => impl == DsmImplementation.SysV
        ? (Libc.shmdt((nint)mapping.Address) == 0 ? 0 : Libc.Errno)
        : (Libc.munmap((nint)mapping.Address, (nuint)mapping.Size) == 0 ? 0 : Libc.Errno);

    /// <summary>
    /// Removes the object's name (shm_unlink, unlink, IPC_RMID); mappings stay valid until detached. 0, or the
    /// errno: ENOENT when it was already gone (also for a SysV id that no longer exists). For SysV with
    /// <paramref name="sysVId"/> = -1 (not known, or not trusted: a table from a previous run) the key is looked up
    /// and the segment removed only when nobody has it attached and it is provably ours: its header names this
    /// instance, kind and handle, or (a creator that died before writing the header) its creator pid is
    /// <paramref name="creatorPid"/>.
    /// </summary>
    [SkipLocalsInit]
    public static int Destroy(DsmNames names, DsmImplementation impl, DsmObjectKind kind, uint handle, int sysVId, int creatorPid = 0)
    {
        if (impl == DsmImplementation.SysV)
        {
            int key = names.SysVKey(kind, handle);
            if (sysVId < 0)
            {
                sysVId = Libc.shmget(key, 0, 0);
                if (sysVId < 0 || !IsOurSysVObject(sysVId, key, names.Tag, kind, handle, creatorPid))
                    return Errno.ENOENT; // gone, or not the object we mean (a foreign key holder, or in use)
            }
            else if (!SysVShm.TryStat(sysVId, out var info, out _) || info.Key != key || !SysVShm.IsOwnedByUs(info))
            {
                // An id read from shared memory: removed only when it is still the segment this instance created
                // under this handle's key (never whatever now has that id: another instance's, another user's).
                return Errno.ENOENT;
            }
            if (Libc.shmctl(sysVId, Libc.IPC_RMID, null) == 0)
                return 0;
            int err = Libc.Errno;
            return err is Errno.EINVAL or Errno.EIDRM ? Errno.ENOENT : err;
        }
        int len = names.PathBufferSize(impl, kind);
        byte* path = stackalloc byte[len];
        names.WritePath(new Span<byte>(path, len), impl, kind, handle);
        int rc = impl == DsmImplementation.Posix ? Libc.shm_unlink(path) : Libc.unlink(path);
        return rc == 0 ? 0 : Libc.Errno;
    }

    private static bool IsOurSysVObject(int id, int key, DsmInstanceTag tag, DsmObjectKind kind, uint handle, int creatorPid)
    {
        if (!SysVShm.TryStat(id, out var info, out _))
            return false;
        if (info.Key != key || !SysVShm.IsOwnedByUs(info) || info.AttachCount != 0)
            return false;
        if (creatorPid != 0 && info.CreatorPid == creatorPid)
            return true;
        return ProbeSysV(id, tag, out var header, out _) == SysVProbe.OursUnattached && header.Handle == handle && header.Kind == kind;
    }

    /// <summary>What <see cref="ProbeSysV"/> found.</summary>
    public enum SysVProbe
    {
        Gone,
        NotOurs,
        OursAttached,
        OursUnattached,

        /// <summary>This user's (IPC_STAT), unattached, but its header was never written (all zero): a creator
        /// that died between shmget and labelling it. Whether it is this instance's is decided by the caller from
        /// the kernel's creator pid (<see cref="DsmOrphanEvidence"/>).</summary>
        UnlabelledUnattached,
    }

    /// <summary>
    /// Reads the header of SysV segment <paramref name="id"/> (read-only attach, then detach) and says whether it
    /// belongs to instance <paramref name="tag"/> and whether any process has it attached. Ownership is decided from
    /// IPC_STAT first (<see cref="SysVShm.IsOwnedByUs"/>): a segment of another user, or one others may write, is
    /// <see cref="SysVProbe.NotOurs"/> without ever being attached; so is one too small or with another header.
    /// Never throws.
    /// </summary>
    public static SysVProbe ProbeSysV(int id, DsmInstanceTag tag, out DsmSegmentHeader header, out int key) =>
        ProbeSysV(id, tag, out header, out key, out _);

    /// <inheritdoc cref="ProbeSysV(int, DsmInstanceTag, out DsmSegmentHeader, out int)"/>
    public static SysVProbe ProbeSysV(int id, DsmInstanceTag tag, out DsmSegmentHeader header, out int key, out SysVSegmentInfo info)
    {
        header = default;
        key = 0;
        if (!SysVShm.TryStat(id, out info, out int statErrno))
            return statErrno == Errno.EACCES ? SysVProbe.NotOurs : SysVProbe.Gone;
        key = info.Key;
        if (!SysVShm.IsOwnedByUs(info) || info.Size < DsmSegmentHeader.Size)
            return SysVProbe.NotOurs;
        byte* p = SysVShm.TryAttach(id, readOnly: true, out int errno);
        if (p == null)
            return errno is Errno.EINVAL or Errno.EIDRM ? SysVProbe.Gone : SysVProbe.NotOurs;
        header = *(DsmSegmentHeader*)p;
        SysVShm.Detach(p); // a read-only mapping we just made: nothing to report if this fails
        if (!header.IsOurs(tag, info.Size))
            return info.AttachCount == 0 && header.IsZero ? SysVProbe.UnlabelledUnattached : SysVProbe.NotOurs;
        return info.AttachCount == 0 ? SysVProbe.OursUnattached : SysVProbe.OursAttached;
    }

    [SkipLocalsInit]
    private static bool CreateFileObject(DsmNames names, DsmImplementation impl, DsmObjectKind kind, uint handle, long size,
        out DsmMapping mapping)
    {
        mapping = default;
        bool isFile = impl == DsmImplementation.Mmap;
        int len = names.PathBufferSize(impl, kind);
        byte* path = stackalloc byte[len];
        names.WritePath(new Span<byte>(path, len), impl, kind, handle);
        const int Flags = Libc.O_RDWR | Libc.O_CREAT | Libc.O_EXCL | Libc.O_CLOEXEC;
        int fd = isFile ? Libc.open(path, Flags, ObjectMode) : Libc.shm_open(path, Flags, ObjectMode);
        if (fd < 0)
        {
            int errno = Libc.Errno;
            if (errno == Errno.EEXIST)
                return false;
            throw new OsCallException($"could not open shared memory segment \"{names.Describe(impl, kind, handle)}\"", errno);
        }
        int failure = 0;
        string? failedCall = null;
        nint p = Libc.MAP_FAILED;
        var header = DsmSegmentHeader.For(names.Tag, kind, handle, size - DsmSegmentHeader.Size);
        int rc = Reserve(fd, size);
        if (rc != 0)
        {
            failure = rc;
            failedCall = "resize";
        }
        else if (Libc.pwrite(fd, (byte*)&header, DsmSegmentHeader.Size, 0) != DsmSegmentHeader.Size)
        {
            failure = Libc.Errno;
            failedCall = "write";
        }
        else
        {
            p = Libc.mmap(0, (nuint)size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
            if (p == Libc.MAP_FAILED)
            {
                failure = Libc.Errno;
                failedCall = "map";
            }
        }
        // The mapping (if any) keeps the object; the descriptor is not needed any more. close() on a tmpfs or
        // local-file descriptor reports nothing that matters here.
        Libc.close(fd);
        if (failedCall is not null)
        {
            if (isFile)
                Libc.unlink(path);
            else
                Libc.shm_unlink(path);
            string name = names.Describe(impl, kind, handle);
            throw failedCall switch
            {
                "resize" => new OsCallException($"could not resize shared memory segment \"{name}\" to {size} bytes", failure),
                "write" => new OsCallException($"could not write shared memory segment \"{name}\"", failure),
                _ => new OsCallException($"could not map shared memory segment \"{name}\"", failure),
            };
        }
        mapping = new DsmMapping((byte*)p, size, -1);
        return true;
    }

    /// <summary>posix_fallocate in an EINTR loop, falling back to ftruncate where the file system cannot
    /// preallocate. 0 or the error number.</summary>
    private static int Reserve(int fd, long size)
    {
        int rc;
        do
        {
            rc = Libc.posix_fallocate(fd, 0, size); // returns the error number, does not set errno
        }
        while (rc == Errno.EINTR);
        if (rc == Errno.EOPNOTSUPP)
            rc = Libc.ftruncate(fd, size) == 0 ? 0 : Libc.Errno;
        return rc;
    }

    [SkipLocalsInit]
    private static bool AttachFileObject(DsmNames names, DsmImplementation impl, DsmObjectKind kind, uint handle,
        out DsmMapping mapping)
    {
        mapping = default;
        bool isFile = impl == DsmImplementation.Mmap;
        int len = names.PathBufferSize(impl, kind);
        byte* path = stackalloc byte[len];
        names.WritePath(new Span<byte>(path, len), impl, kind, handle);
        const int Flags = Libc.O_RDWR | Libc.O_CLOEXEC;
        int fd = isFile ? Libc.open(path, Flags, 0) : Libc.shm_open(path, Flags, 0);
        if (fd < 0)
        {
            int errno = Libc.Errno;
            if (errno == Errno.ENOENT)
                return false;
            throw new OsCallException($"could not open shared memory segment \"{names.Describe(impl, kind, handle)}\"", errno);
        }
        var arch = NativeArch.Current;
        byte* st = stackalloc byte[arch.StatStructSize];
        int failure = 0;
        string? failedCall = null;
        long size = 0;
        nint p = Libc.MAP_FAILED;
        if (Libc.fstat(fd, st) != 0)
        {
            failure = Libc.Errno;
            failedCall = "stat";
        }
        else
        {
            size = *(long*)(st + arch.StatSizeOffset);
            if (size < DsmSegmentHeader.Size)
            {
                Libc.close(fd);
                throw new ShmemCorruptException(
                    $"shared memory segment \"{names.Describe(impl, kind, handle)}\" is too small ({size} bytes) to hold its header");
            }
            p = Libc.mmap(0, (nuint)size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
            if (p == Libc.MAP_FAILED)
            {
                failure = Libc.Errno;
                failedCall = "map";
            }
        }
        Libc.close(fd);
        if (failedCall is not null)
            throw new OsCallException(
                $"could not {failedCall} shared memory segment \"{names.Describe(impl, kind, handle)}\"", failure);
        mapping = new DsmMapping((byte*)p, size, -1);
        return true;
    }

    private static bool CreateSysV(DsmNames names, DsmObjectKind kind, uint handle, long size, out DsmMapping mapping)
    {
        mapping = default;
        int key = names.SysVKey(kind, handle);
        const int Flags = Libc.IPC_CREAT | Libc.IPC_EXCL | ObjectMode;
        int id = Libc.shmget(key, (nuint)size, Flags);
        if (id < 0)
        {
            int errno = Libc.Errno;
            if (errno is Errno.EEXIST or Errno.EACCES or Errno.EIDRM)
                return false; // the key is taken: a collision, the caller retries with another handle
            throw new OsCallException($"could not create shared memory segment \"{(uint)key}\"", errno,
                $"Failed system call was shmget(key={(uint)key}, size={size}, 0{Convert.ToString(Flags, 8)}).",
                SysVShm.HintFor(errno));
        }
        nint p = Libc.shmat(id, 0, 0);
        if (p == -1)
        {
            int errno = Libc.Errno;
            Libc.shmctl(id, Libc.IPC_RMID, null);
            throw new OsCallException($"could not map shared memory segment \"{(uint)key}\"", errno);
        }
        *(DsmSegmentHeader*)p = DsmSegmentHeader.For(names.Tag, kind, handle, size - DsmSegmentHeader.Size);
        mapping = new DsmMapping((byte*)p, size, id);
        return true;
    }

    private static bool AttachSysV(DsmNames names, DsmObjectKind kind, uint handle, int id, out DsmMapping mapping)
    {
        mapping = default;
        if (id < 0)
        {
            id = Libc.shmget(names.SysVKey(kind, handle), 0, 0);
            if (id < 0)
            {
                int errno = Libc.Errno;
                if (errno == Errno.ENOENT)
                    return false;
                throw new OsCallException($"could not look up shared memory segment \"{names.Describe(DsmImplementation.SysV, kind, handle)}\"", errno);
            }
        }
        byte* st = stackalloc byte[Libc.ShmidDsSize];
        if (Libc.shmctl(id, Libc.IPC_STAT, st) != 0)
        {
            int errno = Libc.Errno;
            if (errno is Errno.EINVAL or Errno.EIDRM)
                return false;
            throw new OsCallException($"could not stat shared memory segment \"{names.Describe(DsmImplementation.SysV, kind, handle)}\"", errno);
        }
        long size = *(long*)(st + Libc.ShmidDsSegszOffset);
        if (*(int*)(st + Libc.ShmidDsKeyOffset) != names.SysVKey(kind, handle) || size < DsmSegmentHeader.Size)
            return false; // the id was reused by another segment: ours is gone
        if (!SysVShm.TryStat(id, out var info, out _) || !SysVShm.IsOwnedByUs(info))
            return false; // another user's segment at our key: never attached, and ours does not exist
        nint p = Libc.shmat(id, 0, 0);
        if (p == -1)
        {
            int errno = Libc.Errno;
            if (errno is Errno.EINVAL or Errno.EIDRM)
                return false;
            throw new OsCallException($"could not map shared memory segment \"{names.Describe(DsmImplementation.SysV, kind, handle)}\"", errno);
        }
        mapping = new DsmMapping((byte*)p, size, id);
        return true;
    }
}
