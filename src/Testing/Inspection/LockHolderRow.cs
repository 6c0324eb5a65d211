namespace Postmaster.Testing;

/// <summary>A process holding or waiting for a lock.</summary>
public sealed record LockHolderRow
{
    /// <summary>Its pid, or null when unknown.</summary>
    public int? Pid { get; init; }

    /// <summary>Its backend slot.</summary>
    public int Slot { get; init; }

    /// <summary><c>exclusive</c> or <c>shared</c>.</summary>
    public string Mode { get; init; } = "";

    /// <summary>Whether the process is alive.</summary>
    public bool Alive { get; init; }

    /// <summary>Which lock.</summary>
    public string Lock { get; init; } = "";
}
