using System.Runtime.InteropServices;

namespace Postmaster.Shmem.Interop;

/// <summary>File and descriptor calls used by the CLI and the daemon's start-up (lock file inspection, the log file,
/// owner-only files, process handles).</summary>
internal static unsafe partial class Libc
{
    public const int O_NONBLOCK = 0x800;
    public const int ENAMETOOLONG = 36;
    public const int ELOOP = 40;
    public const int SysPidfdSendSignal = 424; // identical on x86-64 and arm64 (asm-generic)

    [LibraryImport(Name, SetLastError = true)]
    public static partial int dup2(int oldfd, int newfd);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int fchmod(int fd, int mode);

    [LibraryImport(Name, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int rename(string oldpath, string newpath);

    [LibraryImport(Name, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int mkdir(string path, int mode);

    [LibraryImport(Name, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int rmdir(string path);

    [LibraryImport(Name, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int chmod(string path, int mode);

    [LibraryImport(Name, EntryPoint = "syscall", SetLastError = true)]
    public static partial nint syscall4(nint number, nint a1, nint a2, nint a3, nint a4);
}
