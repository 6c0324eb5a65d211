namespace Postmaster.Configuration;

/// <summary>
/// The settings of one configured worker (<c>worker.NAME.*</c>). Value equality lets the supervisor see whether a reload
/// changed a worker. Immutable.
/// </summary>
/// <param name="Name">Lower-case worker name.</param>
/// <param name="Entry">What the worker runs, e.g. <c>idle</c> or <c>path/to/Assembly.dll:Namespace.Type</c>; never empty.</param>
/// <param name="Count">Number of processes.</param>
/// <param name="Argument">Free text passed to each process; may be empty.</param>
/// <param name="Restart">When an exited process is started again.</param>
/// <param name="RestartDelay">Initial wait before a restart.</param>
/// <param name="RestartDelayMax">Longest wait between restarts when backing off; never less than <paramref name="RestartDelay"/>.</param>
/// <param name="StablePeriod">Run time after which a process counts as stable again.</param>
/// <param name="RestartLimit">Restarts allowed after consecutive failed runs (none lasting <paramref name="StablePeriod"/>);
/// the next failure gives the worker up (state "failed"); 0 = never give up.</param>
/// <param name="Globalization">Invariant (default) or ICU globalization for the worker's backends.</param>
public sealed record WorkerSettings(
    string Name,
    string Entry,
    int Count,
    string Argument,
    RestartPolicy Restart,
    TimeSpan RestartDelay,
    TimeSpan RestartDelayMax,
    TimeSpan StablePeriod,
    int RestartLimit = WorkerSettings.DefaultRestartLimit,
    WorkerGlobalization Globalization = WorkerGlobalization.Invariant)
{
    public const int DefaultRestartLimit = 10;
}
