namespace Postmaster.Testing;

/// <summary>One lock tranche.</summary>
public sealed record LockTrancheRow
{
    /// <summary>The tranche's id.</summary>
    public int Id { get; init; }

    /// <summary>The tranche's name.</summary>
    public string Name { get; init; } = "";

    /// <summary>Who holds one of its locks.</summary>
    public IReadOnlyList<LockHolderRow> Holders { get; init; } = [];

    /// <summary>Who waits for one of its locks.</summary>
    public IReadOnlyList<LockHolderRow> Waiters { get; init; } = [];
}
