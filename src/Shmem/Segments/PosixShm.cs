using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.Segments;

/// <summary>
/// POSIX shared-memory objects (shm_open) and regular files that are mapped shared. Low-level: no naming
/// policy and no bookkeeping, which live in the callers. Names passed to the shm_* functions start with '/'.
/// </summary>
internal static class PosixShm
{
    public const int SegmentMode = 0x180; // 0600

    /// <summary>Creates a new object exclusively; null when the name exists already (a collision, not an error).</summary>
    public static SafeFd? CreateExclusive(string name, bool isFile)
    {
        int flags = Libc.O_RDWR | Libc.O_CREAT | Libc.O_EXCL | Libc.O_CLOEXEC;
        int fd = isFile ? Libc.open(name, flags, SegmentMode) : Libc.shm_open(name, flags, SegmentMode);
        if (fd < 0)
        {
            int errno = Libc.Errno;
            if (errno == Errno.EEXIST)
                return null;
            throw new OsCallException($"could not open shared memory segment \"{name}\"", errno);
        }
        return new SafeFd(fd);
    }

    /// <summary>Opens an existing object; null when it does not exist.</summary>
    public static SafeFd? TryOpen(string name, bool isFile, bool write)
    {
        int flags = (write ? Libc.O_RDWR : Libc.O_RDONLY) | Libc.O_CLOEXEC;
        int fd = isFile ? Libc.open(name, flags, 0) : Libc.shm_open(name, flags, 0);
        if (fd < 0)
        {
            int errno = Libc.Errno;
            if (errno is Errno.ENOENT)
                return null;
            throw new OsCallException($"could not open shared memory segment \"{name}\"", errno);
        }
        return new SafeFd(fd);
    }

    /// <summary>
    /// Sets the size and reserves every page now (posix_fallocate), so that a full /dev/shm or file system is an
    /// error here rather than a SIGBUS on first touch later.
    /// </summary>
    public static void Reserve(SafeFd fd, string name, long size)
    {
        int rc;
        do
        {
            rc = Libc.posix_fallocate(fd.Fd, 0, size); // returns the error number, does not set errno
        }
        while (rc == Errno.EINTR);
        if (rc == Errno.EOPNOTSUPP || rc == Errno.EINVAL)
        {
            // A file system without fallocate: fall back to ftruncate (pages are then reserved lazily).
            if (Libc.ftruncate(fd.Fd, size) == 0)
                return;
            rc = Libc.Errno;
        }
        if (rc != 0)
            throw new OsCallException($"could not resize shared memory segment \"{name}\" to {size} bytes", rc);
    }

    /// <summary>Maps the whole object read-write and shared.</summary>
    public static unsafe ShmemRegion Map(SafeFd fd, string name, long size, bool write = true)
    {
        int prot = write ? Libc.PROT_READ | Libc.PROT_WRITE : Libc.PROT_READ;
        nint p = Libc.mmap(0, (nuint)size, prot, Libc.MAP_SHARED, fd.Fd, 0);
        if (p == Libc.MAP_FAILED)
            throw new OsCallException($"could not map shared memory segment \"{name}\"", Libc.Errno);
        return new ShmemRegion((byte*)p, size);
    }

    /// <summary>Unmaps; failures are returned, not thrown (cleanup paths log and carry on).</summary>
    public static unsafe int Unmap(ShmemRegion region) =>
        Libc.munmap((nint)region.Base, (nuint)region.Size) == 0 ? 0 : Libc.Errno;

    /// <summary>Removes the name; 0, or the errno (ENOENT when it was already gone).</summary>
    public static int Unlink(string name, bool isFile)
    {
        int rc = isFile ? Libc.unlink(name) : Libc.shm_unlink(name);
        return rc == 0 ? 0 : Libc.Errno;
    }

    /// <summary>Takes a shared OFD lock on byte 0: "this process has the object attached".</summary>
    public static unsafe void LockShared(SafeFd fd, string name)
    {
        var lk = new Libc.Flock { l_type = Libc.F_RDLCK, l_whence = Libc.SEEK_SET, l_start = 0, l_len = 1 };
        if (Libc.fcntl_lock(fd.Fd, Libc.F_OFD_SETLK, &lk) != 0)
            throw new OsCallException($"could not lock shared memory segment \"{name}\"", Libc.Errno);
    }

    /// <summary>True when some open file description holds a lock on byte 0 (some process is attached).</summary>
    public static unsafe bool IsLockedByAnyone(SafeFd fd, string name)
    {
        var lk = new Libc.Flock { l_type = Libc.F_WRLCK, l_whence = Libc.SEEK_SET, l_start = 0, l_len = 1 };
        if (Libc.fcntl_lock(fd.Fd, Libc.F_OFD_GETLK, &lk) != 0)
            throw new OsCallException($"could not test lock on shared memory segment \"{name}\"", Libc.Errno);
        return lk.l_type != Libc.F_UNLCK;
    }
}
