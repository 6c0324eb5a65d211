using Postmaster.Shmem.Interop;

namespace Postmaster.Shmem.Os;

/// <summary>strerror-style text for errno values and for the .NET exceptions that wrap them (whose own messages may be
/// bare resource keys in a trimmed build, e.g. "UnauthorizedAccess_IODenied_Path").</summary>
internal static class OsError
{
    public const int EACCES = 13;
    public const int ENOENT = 2;
    public const int ENOTDIR = 20;
    public const int ENAMETOOLONG = 36;
    public const int EIO = 5;

    /// <summary>strerror(errno).</summary>
    public static string Text(int errno) => Libc.StrError(errno);

    /// <summary>The errno an I/O exception stands for (EIO when it cannot be told).</summary>
    public static int ErrnoOf(Exception e) => e switch
    {
        UnauthorizedAccessException => EACCES,
        FileNotFoundException or DirectoryNotFoundException => ENOENT,
        PathTooLongException => ENAMETOOLONG,
        IOException io when io.HResult is > 0 and < 4096 => io.HResult, // .NET on Unix puts the raw errno there
        _ => EIO,
    };

    /// <summary>strerror text for an I/O exception.</summary>
    public static string Describe(Exception e) => Text(ErrnoOf(e));
}
