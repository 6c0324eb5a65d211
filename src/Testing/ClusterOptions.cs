using System.Globalization;

namespace Postmaster.Testing;

/// <summary>
/// What <see cref="PostmasterCluster.Create"/> (and <see cref="PostmasterCluster.StartAsync"/>) sets up: where the
/// <c>postmaster</c> binary is, how the data directory is initialised, its settings and workers, and the one timeout
/// of every wait.
/// </summary>
public sealed class ClusterOptions
{
    /// <summary>The environment variable that overrides <see cref="DefaultTimeout"/> (whole seconds).</summary>
    public const string TimeoutVariable = "POSTMASTER_TEST_TIMEOUT";

    /// <summary>The environment variable naming the directory that holds the <c>postmaster</c> binary (used when
    /// <see cref="PostmasterPath"/> is not set).</summary>
    public const string OutVariable = "POSTMASTER_OUT";

    /// <summary>
    /// The timeout of a cluster unless <see cref="Timeout"/> says otherwise: <c>POSTMASTER_TEST_TIMEOUT</c> seconds,
    /// else 60 s. It bounds waits that normally end within a second: it is reached only when something is wrong (or
    /// a loaded CI machine is very slow), never part of a test's logic (PostgreSQL's <c>timeout_default</c>).
    /// </summary>
    public static TimeSpan DefaultTimeout { get; } = TimeSpan.FromSeconds(
        int.TryParse(System.Environment.GetEnvironmentVariable(TimeoutVariable), NumberStyles.None, CultureInfo.InvariantCulture, out int s) && s > 0
            ? s : 60);

    /// <summary>The <c>postmaster</c> executable (or the directory holding it). When null:
    /// <c>$POSTMASTER_OUT/postmaster</c>, else <c>postmaster</c> on <c>PATH</c>.</summary>
    public string? PostmasterPath { get; init; }

    /// <summary>A short label for the cluster's temporary directory (<c>pm-NAME-XXXXXX</c>), to tell clusters apart.</summary>
    public string Name { get; init; } = "cluster";

    /// <summary>How the data directory is initialised (default <see cref="InitMode.Bare"/>).</summary>
    public InitMode Init { get; init; } = InitMode.Bare;

    /// <summary>Settings written to <c>postmaster.conf</c> as <c>name = 'value'</c>, after the initial file (so they
    /// win), e.g. <c>["crash_recovery"] = "restart_all"</c>. Values are text as <c>postmaster.conf</c> takes them
    /// (<c>"10ms"</c>, <c>"128MB"</c>, <c>"on"</c>).</summary>
    public IDictionary<string, string> Settings { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Configured workers, written after <see cref="Settings"/>.</summary>
    public IList<WorkerSpec> Workers { get; } = new List<WorkerSpec>();

    /// <summary>Environment variables for every command the cluster runs, and so for the server it starts and its
    /// backends.</summary>
    public IDictionary<string, string> Environment { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The bound of every wait of this cluster (and of each command it runs).</summary>
    public TimeSpan Timeout { get; init; } = DefaultTimeout;

    /// <summary>Where the cluster's temporary directory is created (default: the system's temporary directory).</summary>
    public string? TempDirectory { get; init; }
}
