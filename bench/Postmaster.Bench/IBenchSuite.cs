namespace Postmaster.Bench;

/// <summary>One benchmark suite: a name on the command line, a run that prints its table, and optionally a helper
/// process body for measurements that need a second process (started through <see cref="BenchChild"/>).</summary>
public interface IBenchSuite
{
    string Name { get; }

    string Description { get; }

    void Run();

    /// <summary>False for diagnostic suites that run only when named.</summary>
    bool InDefaultRun => true;

    /// <summary>The helper process's body; <paramref name="args"/> are what the suite passed to <see cref="BenchChild.Start"/>.</summary>
    int RunChild(string[] args) => throw new NotSupportedException($"suite {Name} has no child process");
}
