using Postmaster.Configuration;

namespace Postmaster.Supervision;

/// <summary>What to run in a backend and how to treat its exits. Static workers come from worker.NAME.* settings
/// (one spec per instance, Name "NAME" or "NAME.2" for the second of count &gt; 1); dynamic ones from spawn requests.
/// <see cref="Icu"/>: the backend runs with ICU globalization (worker.NAME.globalization = icu), so never from the pool.</summary>
public sealed record WorkerSpec(
    string Name,
    string Entry,
    string Argument,
    RestartPolicy Restart,
    TimeSpan RestartDelay,
    TimeSpan RestartDelayMax,
    TimeSpan StablePeriod,
    string? ConfigName,
    int RestartLimit = 0,
    bool Icu = false)
{
    public bool IsStatic => ConfigName is not null;

    public static IEnumerable<WorkerSpec> FromSettings(WorkerSettings w) =>
        Enumerable.Range(1, w.Count).Select(i => new WorkerSpec(
            w.Count == 1 ? w.Name : $"{w.Name}.{i}", w.Entry, w.Argument, w.Restart, w.RestartDelay, w.RestartDelayMax,
            w.StablePeriod, w.Name, w.RestartLimit, w.Globalization == WorkerGlobalization.Icu));

    /// <summary>A dynamic worker: never restarted (PostgreSQL's BGW_NEVER_RESTART for dynamic workers).</summary>
    public static WorkerSpec Dynamic(string name, string entry, string argument) =>
        new(name, entry, argument, RestartPolicy.Never, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, null);

    /// <summary>Should an instance that ended this way be started again?</summary>
    public bool ShouldRestart(bool cleanDone) => Restart switch
    {
        RestartPolicy.Always => true,
        RestartPolicy.OnFailure => !cleanDone,
        _ => false,
    };
}
