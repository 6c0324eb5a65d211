namespace Postmaster.Testing;

/// <summary>One dynamic shared memory segment.</summary>
public sealed record DsmSegmentRow
{
    /// <summary>Its handle.</summary>
    public long Handle { get; init; }

    /// <summary>Its size in bytes.</summary>
    public long Size { get; init; }

    /// <summary><c>posix</c>, <c>sysv</c>, <c>mmap</c> or <c>main</c> (the preallocated region).</summary>
    public string Implementation { get; init; } = "";

    /// <summary>PostgreSQL's reference count: 1 + attachments + 1 when pinned.</summary>
    public int ReferenceCount { get; init; }

    /// <summary>Pinned: it outlives its last attachment.</summary>
    public bool Pinned { get; init; }

    /// <summary><c>creating</c>, <c>live</c>, <c>destroying</c>.</summary>
    public string State { get; init; } = "";

    /// <summary>The processes that have it attached.</summary>
    public IReadOnlyList<int> AttachedPids { get; init; } = [];
}
