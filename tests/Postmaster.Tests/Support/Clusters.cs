using Postmaster.Testing;

namespace Postmaster.Tests.Support;

/// <summary>Clusters as this suite's tests create them: a label and <c>postmaster.conf</c> lines as the
/// documentation writes them ("worker.w.entry = 'idle'"), which become the harness's settings.</summary>
public static class Clusters
{
    /// <summary>An initialised data directory with only <paramref name="config"/> (no demonstration workers, no pool
    /// unless configured); nothing runs yet.</summary>
    public static PostmasterCluster Bare(string name, params string[] config) =>
        PostmasterCluster.Create(Options(name, InitMode.Bare, config));

    /// <summary>A cluster whose data directory does not exist yet.</summary>
    public static PostmasterCluster Empty(string name) => PostmasterCluster.Create(new ClusterOptions { Name = name, Init = InitMode.None });

    /// <summary>An initialised data directory with the product's default configuration; nothing runs yet.</summary>
    public static PostmasterCluster Defaults(string name, params string[] config) =>
        PostmasterCluster.Create(Options(name, InitMode.Defaults, config));

    public static ClusterOptions Options(string name, InitMode init, params string[] config)
    {
        var options = new ClusterOptions { Name = name, Init = init };
        foreach (var line in config)
        {
            int eq = line.IndexOf('=');
            if (eq <= 0)
                throw new ArgumentException($"not a \"name = value\" line: {line}", nameof(config));
            string value = line[(eq + 1)..].Trim();
            if (value.Length >= 2 && value[0] == '\'' && value[^1] == '\'')
                value = value[1..^1].Replace("''", "'");
            options.Settings[line[..eq].Trim()] = value;
        }
        return options;
    }
}
