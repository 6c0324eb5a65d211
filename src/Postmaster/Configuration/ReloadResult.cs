namespace Postmaster.Configuration;

/// <summary>
/// The outcome of <see cref="ConfigLoader.Reload"/>.
/// </summary>
/// <param name="Next">The settings to use from now on. Settings that need a restart keep their current value.</param>
/// <param name="Changed">One log line per applied change, e.g. <c>parameter "log_min_messages" changed to "debug1"</c>,
/// <c>worker "w" added</c>, <c>worker "w" removed</c>.</param>
/// <param name="PendingRestart">One log line per restart-only setting whose new value was not applied, e.g.
/// <c>parameter "max_backends" cannot be changed without restarting the server</c>.</param>
internal sealed record ReloadResult(Settings Next, IReadOnlyList<string> Changed, IReadOnlyList<string> PendingRestart);
