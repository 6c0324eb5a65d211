namespace Postmaster.Testing;

/// <summary>The instance's main shared memory segment (<c>status</c>'s <c>sharedMemory</c>).</summary>
public sealed record MainSegmentInfo
{
    /// <summary><c>sysv</c> or <c>posix</c>.</summary>
    public string? Type { get; init; }

    /// <summary>The SysV key, or for POSIX the number in the object's name.</summary>
    public long? Key { get; init; }

    /// <summary>The SysV shmid, or for POSIX the object's inode.</summary>
    public long? Id { get; init; }

    /// <summary>Its size in bytes.</summary>
    public long? Size { get; init; }
}
