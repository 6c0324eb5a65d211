using System.Runtime.InteropServices;

namespace Postmaster.Shmem.Interop;

/// <summary>
/// Raw libc entry points. C names are kept so that each declaration maps 1:1 to its man page; every call that
/// reports through errno has SetLastError = true, and callers read <see cref="Errno"/> immediately after the call
/// (before any logging or Dispose), PostgreSQL's save_errno discipline. Nothing outside <c>src/Shmem</c> sees this.
/// </summary>
internal static unsafe partial class Libc
{
    public const string Name = "libc";

    /// <summary>errno of the last P/Invoke on this thread.</summary>
    public static int Errno => Marshal.GetLastPInvokeError();

    [LibraryImport(Name, EntryPoint = "strerror_r")]
    private static partial nint strerror_gnu(int errnum, byte* buf, nuint buflen);

    /// <summary>Text of an errno value, as %m prints it.</summary>
    public static string StrError(int errno)
    {
        const int BufferSize = 256;
        byte* buf = stackalloc byte[BufferSize];
        nint p = strerror_gnu(errno, buf, BufferSize); // GNU variant: returns the message pointer
        return p == 0 ? $"errno {errno}" : Marshal.PtrToStringUTF8(p) ?? $"errno {errno}";
    }
}

/// <summary>errno values used by this library (Linux, identical on x86-64 and arm64).</summary>
internal static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int ECHILD = 10;
    public const int EAGAIN = 11;
    public const int EWOULDBLOCK = EAGAIN;
    public const int EIO = 5;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EEXIST = 17;
    public const int ENOTDIR = 20;
    public const int EINVAL = 22;
    public const int ENOSPC = 28;
    public const int EFBIG = 27;
    public const int EIDRM = 43;
    public const int ETIMEDOUT = 110;
    public const int EOPNOTSUPP = 95;
    public const int ECONNABORTED = 103;
}
