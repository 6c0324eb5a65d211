namespace Postmaster.Shmem.Backends;

/// <summary>The names of the workers built into pm-backend: what an entry without "path.dll:Type" may name. The
/// backend's resolver has exactly these (a test checks), so the postmaster and the CLI can refuse a misspelt name
/// before a process is started.</summary>
internal static class BuiltinWorkers
{
    /// <summary>Every built-in worker name.</summary>
    public static readonly IReadOnlyList<string> Names =
    [
        "idle", "exit", "demo", "lock-hold", "spawn", "dsm-hold", "dsm-attach", "dsm-churn", "registry-set", "registry-get", "metrics",
    ];
}
