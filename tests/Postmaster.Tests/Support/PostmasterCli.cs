using Postmaster.Testing;

namespace Postmaster.Tests.Support;

/// <summary>The postmaster command line without a cluster (usage errors, help, paths no cluster owns).</summary>
public static class PostmasterCli
{
    /// <summary>Runs <c>postmaster ARGS</c> and waits for it within the global timeout.</summary>
    public static CliResult Run(params string[] args) => ProcessRunner.Run(Paths.PostmasterExe, args);

    /// <summary>Runs <c>postmaster ARGS</c> with <paramref name="environment"/> added.</summary>
    public static CliResult Run(IEnumerable<string> args, IDictionary<string, string> environment) =>
        ProcessRunner.Run(Paths.PostmasterExe, args, environment);
}
