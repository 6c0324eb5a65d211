using Postmaster.Shmem.Interop;

namespace Postmaster.Shmem.Errors;

/// <summary>
/// A failure of the shared-memory layer. <see cref="Exception.Message"/> is the primary message in PostgreSQL's
/// style (lower case, object quoted); <see cref="Detail"/> and <see cref="Hint"/> are the optional DETAIL and HINT.
/// </summary>
public class ShmemException : Exception
{
    public ShmemException(string message, string? detail = null, string? hint = null, Exception? inner = null)
        : base(message, inner)
    {
        Detail = detail;
        Hint = hint;
    }

    public string? Detail { get; }
    public string? Hint { get; }
}

/// <summary>An operating-system call failed: names the call, the object and errno.</summary>
public sealed class OsCallException : ShmemException
{
    public OsCallException(string message, int errno, string? detail = null, string? hint = null)
        : base($"{message}: {Libc.StrError(errno)}", detail, hint)
    {
        Errno = errno;
    }

    public int Errno { get; }
}

/// <summary>Shared state written by another process failed validation (magic, version, size, counts).</summary>
public sealed class ShmemCorruptException(string message, string? detail = null) : ShmemException(message, detail);
