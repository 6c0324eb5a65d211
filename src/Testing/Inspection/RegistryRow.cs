namespace Postmaster.Testing;

/// <summary>One entry of the named DSM registry.</summary>
public sealed record RegistryRow
{
    /// <summary>The entry's name.</summary>
    public string Name { get; init; } = "";

    /// <summary>The segment's handle.</summary>
    public long Handle { get; init; }

    /// <summary>What the name holds in all once ready: the segment's size, or for an area or hash table every segment of
    /// its area (it grows); before that, the segment's size.</summary>
    public long Size { get; init; }

    /// <summary><c>segment</c>, <c>area</c> or <c>hash</c> (PostgreSQL 19's pg_dsm_registry_allocations.type).</summary>
    public string Type { get; init; } = "";

    /// <summary>The entry's own segment's size (an area's first segment).</summary>
    public long SegmentSize { get; init; }

    /// <summary><c>free</c>, <c>initialising</c>, <c>ready</c>, <c>failed</c>, <c>releasing</c>.</summary>
    public string State { get; init; } = "";

    /// <summary>The process initialising it, or null.</summary>
    public int? InitialiserPid { get; init; }
}
