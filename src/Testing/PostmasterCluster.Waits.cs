using System.Text.RegularExpressions;

namespace Postmaster.Testing;

/// <summary>The waits: each polls one condition, bounded by the cluster's timeout, and fails with what it waited for,
/// the last status and the end of the server log.</summary>
public sealed partial class PostmasterCluster
{
    /// <summary>Waits until <paramref name="condition"/> holds (<paramref name="description"/> names it in a failure:
    /// "the marker file to exist").</summary>
    public void WaitUntil(Func<bool> condition, string description) => Wait.Until(condition, description, Timeout, Context);

    /// <summary>Waits until a <c>status</c> satisfies <paramref name="condition"/> and returns that status.</summary>
    public ClusterStatus WaitForStatus(Func<ClusterStatus, bool> condition, string description)
    {
        ClusterStatus? seen = null;
        WaitUntil(() => condition(seen = Status()), description);
        return seen!;
    }

    /// <summary>Waits until the server says it is ready.</summary>
    public ClusterStatus WaitUntilReady() => WaitForStatus(s => s.State == ServerState.Ready, "the server to be ready");

    /// <summary>Waits until no server holds the data directory's lock (e.g. after killing the postmaster).</summary>
    public void WaitUntilStopped() => WaitUntil(() => !IsRunning, "the server to stop (its lock to be released)");

    /// <summary>Waits until every instance of configured worker <paramref name="name"/> (the one named so, or every
    /// <c>NAME.N</c>) is in <paramref name="state"/>, and returns them.</summary>
    public IReadOnlyList<WorkerRow> WaitForWorker(string name, WorkerState state) =>
        WaitForStatus(s => s.InstancesOf(name) is { Count: > 0 } all && all.All(w => w.State == state),
            $"worker \"{name}\" to be {state.ToString().ToLowerInvariant()}").InstancesOf(name);

    /// <summary>Waits until the backends that run a worker (<see cref="ClusterStatus.RunningBackends"/>: not starting,
    /// not idle in the pool) satisfy <paramref name="condition"/>, and returns them.</summary>
    public IReadOnlyList<BackendRow> WaitForBackends(Func<IReadOnlyList<BackendRow>, bool> condition, string description) =>
        WaitForStatus(s => condition(s.RunningBackends), description).RunningBackends;

    /// <summary>Waits until the server log has a line containing <paramref name="text"/> and returns the first one.</summary>
    public string WaitForLog(string text)
    {
        string? line = null;
        WaitUntil(() => (line = ServerLogLines().FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal))) is not null,
            $"the server log to contain \"{text}\"");
        return line!;
    }

    /// <summary>Waits until <paramref name="pattern"/> matches the server log and returns the first match.</summary>
    public Match WaitForLog(Regex pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        Match? match = null;
        WaitUntil(() => (match = pattern.Match(ServerLog())).Success, $"the server log to match /{pattern}/");
        return match!;
    }

    /// <summary>
    /// Waits for a full crash restart after <paramref name="since"/> (default: the status read when the harness last
    /// signalled a backend) and until the server is ready again; returns that status. Judged by the server's own
    /// count (<c>fullRestarts</c> in <c>status --json</c>), never by time.
    /// </summary>
    public ClusterStatus WaitForFullRestart(ClusterStatus? since = null)
    {
        var (restarts, _) = Counts(since);
        return WaitForStatus(s => s.State == ServerState.Ready && s.FullRestarts > restarts,
            $"a full crash restart (the {Ordinal(restarts + 1)}) and the server ready again");
    }

    /// <summary>
    /// Waits until a backend crash after <paramref name="since"/> (default: the status read when the harness last
    /// signalled a backend) was reconciled (<c>reconciles</c> in <c>status --json</c>) and returns that status; fails
    /// at once if a full restart happens instead.
    /// </summary>
    public ClusterStatus WaitForReconcile(ClusterStatus? since = null)
    {
        var (restarts, reconciles) = Counts(since);
        return WaitForStatus(s =>
        {
            if (s.FullRestarts > restarts)
                throw Failure("a full crash restart happened where a reconcile was expected");
            return s.Reconciles > reconciles;
        }, $"a crash to be reconciled (the {Ordinal(reconciles + 1)} reconcile)");
    }

    /// <summary>Waits until the server has recovered from a crash after <paramref name="since"/> either way (default:
    /// the status read when the harness last signalled a backend) and says which: a reconcile, or a full restart
    /// after which the server is ready again.</summary>
    public RecoveryKind WaitForRecovery(ClusterStatus? since = null)
    {
        var (restarts, reconciles) = Counts(since);
        var s = WaitForStatus(s => (s.FullRestarts > restarts && s.State == ServerState.Ready) || s.Reconciles > reconciles,
            "the server to recover from a crash (a reconcile or a full restart)");
        return s.FullRestarts > restarts ? RecoveryKind.FullRestart : RecoveryKind.Reconcile;
    }

    private (long FullRestarts, long Reconciles) Counts(ClusterStatus? since)
    {
        var s = since ?? _baseline ??
            throw Failure("no status to count recovery from: pass one, or signal a backend through the harness first");
        if (s.FullRestarts is not long restarts || s.Reconciles is not long reconciles)
            throw Failure("the status to count recovery from has no recovery counts (it was read while the server was starting)");
        return (restarts, reconciles);
    }

    private static string Ordinal(long n) => (n % 100) switch
    {
        11 or 12 or 13 => $"{n}th",
        _ => (n % 10) switch { 1 => $"{n}st", 2 => $"{n}nd", 3 => $"{n}rd", _ => $"{n}th" },
    };
}
