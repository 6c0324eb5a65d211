namespace Postmaster.Testing;

/// <summary>One allocation of the main segment.</summary>
public sealed record AllocationRow
{
    /// <summary>Its name; <c>&lt;anonymous&gt;</c> for header and index, null for the free space.</summary>
    public string? Name { get; init; }

    /// <summary>Its offset from the segment's base (null for the free space).</summary>
    public long? Offset { get; init; }

    /// <summary>Bytes requested.</summary>
    public long Size { get; init; }

    /// <summary>Bytes taken, alignment included.</summary>
    public long AllocatedSize { get; init; }
}
