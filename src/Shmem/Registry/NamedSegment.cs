using Postmaster.Shmem.Dsm;

namespace Postmaster.Shmem.Registry;

/// <summary>
/// What <see cref="DsmRegistry.GetNamedSegment"/> returns: the name and this process's mapping of the segment
/// registered under it. The mapping is pinned (PostgreSQL's dsm_pin_mapping): it stays until the process exits
/// (the exit path's <see cref="DsmSession.DetachAll"/>) or the name is released here, so the region can be kept
/// for the life of the process. Store offsets from <see cref="Region"/> in the segment, never addresses.
/// </summary>
internal readonly struct NamedSegment
{
    internal NamedSegment(string name, DsmSegment segment)
    {
        Name = name;
        Segment = segment;
    }

    /// <summary>The registered name.</summary>
    public string Name { get; }

    /// <summary>This process's mapping (its on-detach callbacks run at process exit).</summary>
    public DsmSegment Segment { get; }

    /// <summary>The segment's instance-wide handle.</summary>
    public DsmHandle Handle => Segment.Handle;

    /// <summary>The segment's bytes, exactly the size registered.</summary>
    public ShmemRegion Region => Segment.Region;

    public long Size => Segment.Size;

    /// <summary>The segment's base address in this process.</summary>
    public nint Address => Segment.Address;

    public override string ToString() => $"named DSM segment \"{Name}\" ({Segment})";
}
