namespace Postmaster.Workers;

/// <summary>The names of the workers built into pm-backend: what an entry without "path.dll:Type" may name. The
/// backend's resolver has exactly these (a test checks), so the postmaster and the CLI can refuse a misspelt name
/// before a process is started.</summary>
public static class BuiltinWorkers
{
    public static readonly IReadOnlyList<string> Names =
    [
        "idle", "exit", "demo", "lock-hold", "spawn", "dsm-hold", "dsm-attach", "dsm-churn", "registry-set", "registry-get",
    ];
}
