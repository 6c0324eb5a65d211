namespace Postmaster.Testing;

/// <summary>How <see cref="PostmasterCluster.Create"/> prepares the data directory.</summary>
public enum InitMode
{
    /// <summary><c>postmaster init</c>, then only what the test configures: the demonstration workers of the
    /// default configuration are dropped and the backend pool is off (<c>backend_pool_size = 0</c>) unless
    /// <see cref="ClusterOptions.Settings"/> sets it; then the settings and workers of the options.</summary>
    Bare = 0,

    /// <summary><c>postmaster init</c> with the product's default configuration (demonstration workers, pool), then
    /// the settings and workers of the options.</summary>
    Defaults = 1,

    /// <summary>Nothing: <see cref="PostmasterCluster.DataDirectory"/> is a path that does not exist yet (for
    /// tests of <c>init</c>, or of <c>start</c> on a missing directory). Settings and workers must be empty.</summary>
    None = 2,
}
