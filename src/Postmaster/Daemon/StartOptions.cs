namespace Postmaster.Daemon;

/// <summary>How the daemon was asked to run.</summary>
/// <param name="DataDir">Absolute data directory.</param>
/// <param name="Overrides">-c name=value assignments, in order.</param>
/// <param name="ReadyFd">Descriptor on which to write "ready\n" once ready (set by <c>start --detach</c>); before that,
/// "locked OFFSET\n" once the lock is held (see <see cref="StartupOutput"/>).</param>
/// <param name="OptionsLine">The command line recorded in postmaster.opts for <c>restart</c>.</param>
/// <param name="DaemonLog">A detached daemon's log file: opened (and made stdout/stderr) only once the lock is held;
/// until then output goes to the CLI that started it. Null: keep stdout/stderr as they are.</param>
public sealed record StartOptions(string DataDir, IReadOnlyList<string> Overrides, int? ReadyFd, string OptionsLine,
    string? DaemonLog = null);
