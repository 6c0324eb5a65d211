namespace Postmaster.Testing;

/// <summary>One configured worker instance (<c>status</c>'s <c>workers[]</c>).</summary>
public sealed record WorkerRow
{
    /// <summary>The instance's name: the worker's name, or <c>NAME.N</c> when it has several processes.</summary>
    public string Name { get; init; } = "";

    /// <summary>Its state.</summary>
    public WorkerState State { get; init; }

    /// <summary>The process running it, or null.</summary>
    public int? Pid { get; init; }

    /// <summary>How often it was restarted.</summary>
    public int Restarts { get; init; }

    /// <summary>Consecutive failures.</summary>
    public int Failures { get; init; }

    /// <summary>When it starts again (back-off only).</summary>
    public DateTimeOffset? NextStartAt { get; init; }

    /// <summary>How its last process ended (<c>exited with exit code 1</c>, ...), or null.</summary>
    public string? LastExit { get; init; }

    /// <summary>When its last process ended.</summary>
    public DateTimeOffset? LastExitAt { get; init; }
}
