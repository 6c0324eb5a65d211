namespace Postmaster.Testing;

/// <summary>One backend slot in use.</summary>
public sealed record BackendSlotRow
{
    /// <summary>The slot's number.</summary>
    public int Slot { get; init; }

    /// <summary>Its backend's pid, or null while it has none.</summary>
    public int? Pid { get; init; }

    /// <summary>The slot's state (<c>assigned</c>, <c>active</c>, ...).</summary>
    public string State { get; init; } = "";

    /// <summary>The worker's name.</summary>
    public string Name { get; init; } = "";

    /// <summary>The worker's entry.</summary>
    public string Entry { get; init; } = "";

    /// <summary>The slot's generation.</summary>
    public long Generation { get; init; }

    /// <summary>Held by a pool member.</summary>
    public bool Pooled { get; init; }

    /// <summary>A connection backend's client session (as in <see cref="BackendRow.Session"/>); null for other
    /// backends.</summary>
    public SessionRow? Session { get; init; }
}
