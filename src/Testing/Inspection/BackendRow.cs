namespace Postmaster.Testing;

/// <summary>One backend (<c>status</c>'s <c>backends[]</c>): a configured worker's process, a dynamic worker or a
/// pool member.</summary>
public sealed record BackendRow
{
    /// <summary>Its process id (null only for a slot assigned before its process exists).</summary>
    public int? Pid { get; init; }

    /// <summary>Its backend slot.</summary>
    public int Slot { get; init; }

    /// <summary>The worker's name (an instance name such as <c>w.2</c> for configured workers, <c>pool</c> for an
    /// idle pool member).</summary>
    public string Name { get; init; } = "";

    /// <summary>The worker entry it runs.</summary>
    public string Entry { get; init; } = "";

    /// <summary>Its state.</summary>
    public BackendState State { get; init; }

    /// <summary>An idle pool member.</summary>
    public bool Pool { get; init; }

    /// <summary>When it started.</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>How often its worker was restarted before this process.</summary>
    public int Restarts { get; init; }

    /// <summary>Dynamic shared memory segments it has attached.</summary>
    public int DsmSegments { get; init; }

    /// <summary>For a connection backend (entry <c>connection-host</c>): its current session and how many it served;
    /// null for other backends.</summary>
    public SessionRow? Session { get; init; }
}

/// <summary>A connection backend's session, as <c>status --json</c> shows it.</summary>
public sealed record SessionRow
{
    /// <summary>The instance-wide id of the session it serves now; null while it waits for one.</summary>
    public long? Id { get; init; }

    /// <summary>The client's address (<c>127.0.0.1:50312</c>, <c>[::1]:50312</c>, <c>[local]</c>); null while idle.</summary>
    public string? Client { get; init; }

    /// <summary>When the postmaster accepted the current session's connection; null while idle.</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>Sessions this backend has been given, the current one included.</summary>
    public int Served { get; init; }

    /// <summary>Sessions in progress: 0 or 1, or up to <c>concurrent_sessions_per_backend</c> for a backend serving
    /// several at once (<see cref="Id"/> and <see cref="Client"/> are then the newest one's).</summary>
    public int Open { get; init; }
}
