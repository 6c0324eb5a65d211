namespace Postmaster.Workers;

/// <summary>
/// What <see cref="DsmRegistry.GetNamedSegment"/> returns: the name and this process's mapping of the segment
/// registered under it. The mapping is pinned: it stays until the process exits or releases the name, so the region
/// can be kept for the life of the process. Store offsets from <see cref="Region"/> in the segment, never addresses.
/// </summary>
public readonly struct NamedSegment
{
    internal NamedSegment(string name, DsmSegment segment)
    {
        Name = name;
        Segment = segment;
    }

    /// <summary>The registered name.</summary>
    public string Name { get; }

    /// <summary>This process's mapping (its on-detach callbacks run at process exit or release).</summary>
    public DsmSegment Segment { get; }

    /// <summary>The segment's instance-wide handle.</summary>
    public DsmHandle Handle => Segment.Handle;

    /// <summary>The segment's bytes, exactly the size registered.</summary>
    public ShmemRegion Region => Segment.Region;

    /// <summary>The segment's size in bytes.</summary>
    public long Size => Segment.Size;

    /// <summary>"named DSM segment "NAME" (dynamic shared memory segment ...)".</summary>
    public override string ToString() => $"named DSM segment \"{Name}\" ({Segment})";
}
