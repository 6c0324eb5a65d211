namespace Postmaster.Testing;

/// <summary>One entry of the named DSM registry.</summary>
public sealed record RegistryRow
{
    /// <summary>The entry's name.</summary>
    public string Name { get; init; } = "";

    /// <summary>The segment's handle.</summary>
    public long Handle { get; init; }

    /// <summary>The segment's size.</summary>
    public long Size { get; init; }

    /// <summary><c>free</c>, <c>initialising</c>, <c>ready</c>, <c>failed</c>, <c>releasing</c>.</summary>
    public string State { get; init; } = "";

    /// <summary>The process initialising it, or null.</summary>
    public int? InitialiserPid { get; init; }
}
