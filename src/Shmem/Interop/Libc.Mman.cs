using System.Runtime.InteropServices;

namespace Postmaster.Shmem.Interop;

internal static unsafe partial class Libc
{
    public const int PROT_READ = 1;
    public const int PROT_WRITE = 2;
    public const int MAP_SHARED = 1;
    public const int MAP_ANONYMOUS = 0x20;
    public const int MAP_HUGETLB = 0x40000;
    public const int MAP_POPULATE = 0x8000;
    public static readonly nint MAP_FAILED = -1;

    // returns MAP_FAILED ((void*)-1) on failure
    [LibraryImport(Name, SetLastError = true)]
    public static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int munmap(nint addr, nuint length);

    // glibc >= 2.34 has shm_open/shm_unlink in libc proper; the name must start with '/'
    [LibraryImport(Name, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int shm_open(string name, int oflag, int mode);

    [LibraryImport(Name, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int shm_unlink(string name);

    // NUL-terminated UTF-8 name already in a caller's buffer (allocation-free hot paths)
    [LibraryImport(Name, SetLastError = true)]
    public static partial int shm_open(byte* name, int oflag, int mode);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int shm_unlink(byte* name);
}
