namespace Postmaster.Shmem;

internal enum ShmemLogLevel
{
    Debug,
    Log,
    Warning,
}

/// <summary>How the shared-memory layer reports what it did (removals, fallbacks). The daemon adapts this to its
/// logging; the library itself has no logging dependency.</summary>
internal interface IShmemLogger
{
    void Write(ShmemLogLevel level, string message);
}

/// <summary>Discards everything (tests, inspection commands).</summary>
internal sealed class NullShmemLogger : IShmemLogger
{
    public static readonly NullShmemLogger Instance = new();

    public void Write(ShmemLogLevel level, string message)
    {
    }
}
