namespace Postmaster.Testing;

/// <summary>
/// A configured (static) worker: the <c>worker.NAME.*</c> lines of <c>postmaster.conf</c>. Only what is set here is
/// written; the rest keeps the product's defaults (<c>docs/configuration.md</c>).
/// </summary>
/// <param name="Name">The worker's name (<c>worker.NAME.entry</c>); instances of a worker with <see cref="Count"/>
/// above 1 are named <c>NAME.1</c>, <c>NAME.2</c>, ...</param>
/// <param name="Entry">A built-in worker (<c>idle</c>, <c>lock-hold</c>, ...) or <c>/path/Assembly.dll:Namespace.Type</c>
/// (see <see cref="EntryOf"/>).</param>
/// <param name="Argument">The text passed to each process, or null for none.</param>
public sealed record WorkerSpec(string Name, string Entry, string? Argument = null)
{
    /// <summary><c>worker.NAME.count</c>: the number of processes.</summary>
    public int? Count { get; init; }

    /// <summary><c>worker.NAME.restart</c>.</summary>
    public WorkerRestart? Restart { get; init; }

    /// <summary><c>worker.NAME.restart_delay</c>: the first wait before a restart.</summary>
    public TimeSpan? RestartDelay { get; init; }

    /// <summary><c>worker.NAME.restart_delay_max</c>: the longest wait when backing off.</summary>
    public TimeSpan? RestartDelayMax { get; init; }

    /// <summary><c>worker.NAME.restart_limit</c>: restarts after consecutive failures before it is given up (0 = never).</summary>
    public int? RestartLimit { get; init; }

    /// <summary><c>worker.NAME.stable_period</c>: the run time after which back-off resets.</summary>
    public TimeSpan? StablePeriod { get; init; }

    /// <summary>The entry of a worker class: <c>/path/of/its/Assembly.dll:Namespace.Type</c>, from the loaded type
    /// (the assembly must be a file on disk, as the test's own build output is).</summary>
    public static string EntryOf(Type workerType)
    {
        ArgumentNullException.ThrowIfNull(workerType);
        string location = workerType.Assembly.Location;
        if (location.Length == 0)
            throw new ArgumentException($"the assembly of {workerType.FullName} was not loaded from a file", nameof(workerType));
        return $"{location}:{workerType.FullName}";
    }

    /// <summary>A worker named <paramref name="name"/> running the class <typeparamref name="TWorker"/>
    /// (<see cref="EntryOf"/>).</summary>
    public static WorkerSpec For<TWorker>(string name, string? argument = null) => new(name, EntryOf(typeof(TWorker)), argument);

    /// <summary>The configuration lines, in the order the product documents them.</summary>
    internal IEnumerable<string> ConfigLines()
    {
        string prefix = $"worker.{Name}.";
        yield return ConfigText.Line(prefix + "entry", Entry);
        if (Argument is not null)
            yield return ConfigText.Line(prefix + "argument", Argument);
        if (Count is int count)
            yield return ConfigText.Line(prefix + "count", ConfigText.Number(count));
        if (Restart is WorkerRestart restart)
            yield return ConfigText.Line(prefix + "restart", restart switch
            {
                WorkerRestart.Never => "never",
                WorkerRestart.Always => "always",
                _ => "on-failure",
            });
        if (RestartDelay is TimeSpan delay)
            yield return ConfigText.Line(prefix + "restart_delay", ConfigText.Time(delay));
        if (RestartDelayMax is TimeSpan max)
            yield return ConfigText.Line(prefix + "restart_delay_max", ConfigText.Time(max));
        if (RestartLimit is int limit)
            yield return ConfigText.Line(prefix + "restart_limit", ConfigText.Number(limit));
        if (StablePeriod is TimeSpan stable)
            yield return ConfigText.Line(prefix + "stable_period", ConfigText.Time(stable));
    }
}
