namespace Postmaster.Testing;

/// <summary>
/// <c>postmaster status --json</c> as a typed object (fields: <c>docs/architecture.md</c>, "Inspection output"). Fields
/// a later version adds are ignored; what a stopped server does not report keeps its default (no workers, no
/// backends, <see cref="ServerState.Stopped"/>).
/// </summary>
public sealed record ClusterStatus
{
    /// <summary>A server holds the data directory's lock.</summary>
    public bool Running { get; init; }

    /// <summary>The postmaster's pid (proven by the CLI to hold the lock), or null (not running, or a damaged lock
    /// file: then <see cref="LockFileDamaged"/> says how).</summary>
    public int? Pid { get; init; }

    /// <summary>How the lock file is damaged, when it is.</summary>
    public string? LockFileDamaged { get; init; }

    /// <summary>The server's state.</summary>
    public ServerState State { get; init; }

    /// <summary>The data directory.</summary>
    public string DataDirectory { get; init; } = "";

    /// <summary>When the server started.</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>The main segment.</summary>
    public MainSegmentInfo? SharedMemory { get; init; }

    /// <summary>Full crash restarts done since the server started (shared memory rebuilt); null while it is starting.</summary>
    public long? FullRestarts { get; init; }

    /// <summary>Backend crashes reconciled since the server started (the others kept running); null while it is starting.</summary>
    public long? Reconciles { get; init; }

    /// <summary>Every configured worker instance.</summary>
    public IReadOnlyList<WorkerRow> Workers { get; init; } = [];

    /// <summary>Every backend, pool members included.</summary>
    public IReadOnlyList<BackendRow> Backends { get; init; } = [];

    /// <summary>The backends that run a worker (not starting, not idle in the pool).</summary>
    public IReadOnlyList<BackendRow> RunningBackends => Backends.Where(b => b.State == BackendState.Running).ToList();

    /// <summary>The instances of configured worker <paramref name="name"/>: the one named so, or every
    /// <c>NAME.N</c> when it has several.</summary>
    public IReadOnlyList<WorkerRow> InstancesOf(string name)
    {
        var exact = Workers.Where(w => w.Name == name).ToList();
        return exact.Count > 0 ? exact : Workers.Where(w => IsInstanceOf(w.Name, name)).ToList();
    }

    private static bool IsInstanceOf(string instance, string worker) =>
        instance.Length > worker.Length + 1 && instance.StartsWith(worker, StringComparison.Ordinal) && instance[worker.Length] == '.' &&
        instance.AsSpan(worker.Length + 1).IndexOfAnyExceptInRange('0', '9') < 0;
}
