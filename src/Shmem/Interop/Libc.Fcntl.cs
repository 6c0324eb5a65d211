using System.Runtime.InteropServices;

namespace Postmaster.Shmem.Interop;

internal static unsafe partial class Libc
{
    public const int O_RDONLY = 0;
    public const int O_WRONLY = 1;
    public const int O_RDWR = 2;
    public const int O_CREAT = 0x40;
    public const int O_EXCL = 0x80;
    public const int O_TRUNC = 0x200;
    public const int O_APPEND = 0x400;
    public const int O_CLOEXEC = 0x80000;

    public const int F_OFD_GETLK = 36;
    public const int F_OFD_SETLK = 37;
    public const short F_RDLCK = 0;
    public const short F_WRLCK = 1;
    public const short F_UNLCK = 2;
    public const short SEEK_SET = 0;

    public const int LOCK_SH = 1;
    public const int LOCK_EX = 2;
    public const int LOCK_NB = 4;
    public const int LOCK_UN = 8;

    /// <summary>struct flock (32 bytes on 64-bit Linux).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 32)]
    public struct Flock
    {
        [FieldOffset(0)] public short l_type;
        [FieldOffset(2)] public short l_whence;
        [FieldOffset(8)] public long l_start;
        [FieldOffset(16)] public long l_len;
        [FieldOffset(24)] public int l_pid;   // -1 for open-file-description locks
    }

    // returns -1 on failure (errno)
    [LibraryImport(Name, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int open(string path, int flags, int mode);

    // NUL-terminated UTF-8 path already in a caller's buffer (allocation-free hot paths)
    [LibraryImport(Name, EntryPoint = "open", SetLastError = true)]
    public static partial int open(byte* path, int flags, int mode);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport(Name, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int fcntl_lock(int fd, int cmd, Flock* lk);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int flock(int fd, int operation);

    [LibraryImport(Name, SetLastError = true)]
    public static partial nint pread(int fd, byte* buf, nuint count, long offset);

    [LibraryImport(Name, SetLastError = true)]
    public static partial nint pwrite(int fd, byte* buf, nuint count, long offset);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int fsync(int fd);

    [LibraryImport(Name, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int unlink(string path);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int unlink(byte* path);

    [LibraryImport(Name, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int link(string oldpath, string newpath);

    /// <summary>stat(2) with a NUL-terminated UTF-8 path (see <see cref="Text.Utf8Text.ToNulTerminated"/>): every backend
    /// stats its data directory while it starts, and the built-in string marshaller would load Encoding.UTF8.</summary>
    [LibraryImport(Name, EntryPoint = "stat", SetLastError = true)]
    public static partial int stat(byte* path, byte* buf);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int fstat(int fd, byte* buf);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int ftruncate(int fd, long length);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int fchmod(int fd, uint mode);

    // returns the error number directly (0 on success); errno is NOT set
    [LibraryImport(Name)]
    public static partial int posix_fallocate(int fd, long offset, long len);

    [LibraryImport(Name)]
    public static partial uint geteuid();

    [LibraryImport(Name)]
    public static partial int getpid();

    [LibraryImport(Name)]
    public static partial int getppid();
}
