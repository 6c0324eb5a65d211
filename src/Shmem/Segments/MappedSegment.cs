using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.Segments;

/// <summary>
/// One OS shared-memory object mapped into this process: the owning handle of a <see cref="ShmemRegion"/>.
/// Lifecycle: Create* makes a new object and maps it; Attach* maps an existing one; <see cref="Dispose"/> unmaps
/// (detach); <see cref="Destroy"/> removes the OS name so the object disappears once every process has detached.
/// POSIX and mmap-file segments keep their descriptor open with a shared OFD lock on byte 0 for as long as they are
/// attached, so a later postmaster can tell "some process still has this mapped" exactly (SysV uses shm_nattch).
/// </summary>
internal sealed unsafe class MappedSegment : IDisposable
{
    private SafeFd? _fd;
    private bool _detached;

    private MappedSegment(SegmentKind kind, string name, long key, long id, ShmemRegion region, SafeFd? fd)
    {
        Kind = kind;
        Name = name;
        Key = key;
        Id = id;
        Region = region;
        _fd = fd;
    }

    public SegmentKind Kind { get; }

    /// <summary>The OS name: "/name" for POSIX, a file path for mmap, the decimal key for SysV.</summary>
    public string Name { get; }

    /// <summary>SysV key; for POSIX and mmap segments the numeric key the caller derived the name from (or 0).</summary>
    public long Key { get; }

    /// <summary>SysV shmid; for POSIX and mmap segments the inode of the object.</summary>
    public long Id { get; }

    public ShmemRegion Region { get; }

    public long Size => Region.Size;

    /// <summary>Creates and maps a new POSIX (or file) object of exactly <paramref name="size"/> bytes, reserving its
    /// pages. Returns null when the name is taken.</summary>
    public static MappedSegment? CreatePosix(string name, long size, long key = 0, bool isFile = false)
    {
        var fd = PosixShm.CreateExclusive(name, isFile);
        if (fd is null)
            return null;
        try
        {
            PosixShm.Reserve(fd, name, size);
            PosixShm.LockShared(fd, name);
            var region = PosixShm.Map(fd, name, size);
            var st = FileStat.OfDescriptor(fd.Fd, name);
            return new MappedSegment(isFile ? SegmentKind.Mmap : SegmentKind.Posix, name, key, (long)st.Inode, region, fd);
        }
        catch
        {
            PosixShm.Unlink(name, isFile);
            fd.Dispose();
            throw;
        }
    }

    /// <summary>Maps an existing POSIX (or file) object; its size comes from fstat. Null when it does not exist.</summary>
    public static MappedSegment? AttachPosix(string name, long key = 0, bool isFile = false)
    {
        var fd = PosixShm.TryOpen(name, isFile, write: true);
        if (fd is null)
            return null;
        try
        {
            var st = FileStat.OfDescriptor(fd.Fd, name);
            PosixShm.LockShared(fd, name);
            var region = PosixShm.Map(fd, name, st.Size);
            return new MappedSegment(isFile ? SegmentKind.Mmap : SegmentKind.Posix, name, key, (long)st.Inode, region, fd);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>Creates and attaches a new SysV segment; null when the key is taken.</summary>
    public static MappedSegment? CreateSysV(int key, long size, bool huge = false)
    {
        int id = SysVShm.CreateExclusive(key, size, huge);
        if (id < 0)
            return null;
        byte* p = SysVShm.TryAttach(id, readOnly: false, out int errno);
        if (p == null)
        {
            SysVShm.Remove(id);
            throw new OsCallException($"could not attach shared memory segment (key {(uint)key}, ID {id})", errno);
        }
        return new MappedSegment(SegmentKind.SysV, ((uint)key).ToString(), (uint)key, id, new ShmemRegion(p, size), null);
    }

    /// <summary>Attaches an existing SysV segment by id; null when it is gone (EINVAL/EIDRM). A segment that is not
    /// provably this user's (<see cref="SysVShm.IsOwnedByUs"/>, checked with IPC_STAT before shmat) is never attached:
    /// <see cref="ShmemCorruptException"/>.</summary>
    public static MappedSegment? AttachSysV(int id, long key = 0)
    {
        if (!SysVShm.TryStat(id, out var info, out int errno))
        {
            if (errno is Errno.EINVAL or Errno.EIDRM)
                return null;
            throw new OsCallException($"could not stat shared memory segment (ID {id})", errno);
        }
        if (!SysVShm.IsOwnedByUs(info))
            throw new ShmemCorruptException($"shared memory segment (key {info.Key}, ID {id}) is not ours: owner uid {info.OwnerUid}, " +
                                            $"creator uid {info.CreatorUid}, mode 0{Convert.ToString(info.Permissions, 8)}");
        byte* p = SysVShm.TryAttach(id, readOnly: false, out errno);
        if (p == null)
        {
            if (errno is Errno.EINVAL or Errno.EIDRM)
                return null;
            throw new OsCallException($"could not attach shared memory segment (ID {id})", errno);
        }
        return new MappedSegment(SegmentKind.SysV, key.ToString(), key, id, new ShmemRegion(p, info.Size), null);
    }

    /// <summary>Removes the OS name (shm_unlink, unlink, IPC_RMID). The mapping stays usable until Dispose.
    /// Returns 0 or the errno; never throws (used on shutdown paths).</summary>
    public int Destroy() => Kind switch
    {
        SegmentKind.SysV => SysVShm.Remove((int)Id),
        SegmentKind.Posix => PosixShm.Unlink(Name, isFile: false),
        _ => PosixShm.Unlink(Name, isFile: true),
    };

    /// <summary>Detaches: unmaps and closes the descriptor (which drops the attach lock). Idempotent.</summary>
    public void Dispose()
    {
        if (_detached)
            return;
        _detached = true;
        if (Kind == SegmentKind.SysV)
            SysVShm.Detach(Region.Base);
        else
            PosixShm.Unmap(Region);
        _fd?.Dispose();
        _fd = null;
    }
}
