namespace Postmaster.Daemon;

/// <summary>How the daemon was asked to run.</summary>
/// <param name="DataDir">Absolute data directory.</param>
/// <param name="Overrides">-c name=value assignments, in order.</param>
/// <param name="ReadyFd">Descriptor on which to write "ready\n" once ready (set by <c>start --detach</c>).</param>
/// <param name="OptionsLine">The command line recorded in postmaster.opts for <c>restart</c>.</param>
public sealed record StartOptions(string DataDir, IReadOnlyList<string> Overrides, int? ReadyFd, string OptionsLine);
