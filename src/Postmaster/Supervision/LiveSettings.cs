using Postmaster.Configuration;

namespace Postmaster.Supervision;

/// <summary>
/// The one place the daemon's current settings live. Every component reads <see cref="Current"/> when it needs a
/// value (none keeps a copy a reload could leave stale); only the supervisor's reload replaces it, and every
/// replacement is handed to <paramref name="published"/> (which writes DIR/postmaster.settings for <c>config</c>).
/// </summary>
internal sealed class LiveSettings(Settings initial, string configPath, IReadOnlyList<string> overrides, Action<Settings>? published = null)
{
    public Settings Current { get; private set; } = initial;

    /// <summary>postmaster.conf of the data directory.</summary>
    public string ConfigPath { get; } = configPath;

    /// <summary>The -c name=value overrides of the command line (re-applied on every reload).</summary>
    public IReadOnlyList<string> Overrides { get; } = overrides;

    public void Replace(Settings next)
    {
        Current = next;
        published?.Invoke(next);
    }
}
