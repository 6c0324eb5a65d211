using System.Text.RegularExpressions;
using Postmaster.Testing;
using Postmaster.Tests.Configuration;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Sdk;

/// <summary>
/// A worker author's first hour, for real: the <c>dotnet new</c> template and the README's "Write a worker" example each
/// become a project outside this repository that references the packed SDK (out/packages, made by <c>./run.sh pack</c>,
/// which <c>./run.sh test</c> runs first), builds with warnings as errors, and runs as a static worker. The template's
/// project also takes a NuGet dependency of its own, which the backend must load.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class WorkerProjectTests : IDisposable
{
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(5);
    private readonly string _dir = Directory.CreateTempSubdirectory("pm-workerproject-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Packages => Path.Combine(Paths.OutDir, "packages");

    private static string Version =>
        Regex.Match(File.ReadAllText(Path.Combine(RepositoryRoot.Path, "Directory.Build.props")), "<PostmasterVersion>([^<]+)<").Groups[1].Value;

    [Fact]
    public void The_template_creates_a_worker_that_builds_clean_loads_its_own_NuGet_dependency_and_runs()
    {
        string hive = Path.Combine(_dir, "hive");
        string project = Path.Combine(_dir, "TplWorker");
        Dotnet(_dir, "new", "install", Path.Combine(Packages, $"Postmaster.Templates.{Version}.nupkg"), "--debug:custom-hive", hive);
        Dotnet(_dir, "new", "postmaster-worker", "-n", "TplWorker", "-o", project, "--debug:custom-hive", hive);
        // The user's own dependency, used by the worker.
        string csproj = Path.Combine(project, "TplWorker.csproj");
        File.WriteAllText(csproj, File.ReadAllText(csproj).Replace("</Project>",
            "  <ItemGroup>\n    <PackageReference Include=\"Newtonsoft.Json\" Version=\"13.0.1\" />\n  </ItemGroup>\n</Project>"));
        string worker = Path.Combine(project, "Worker.cs");
        string code = File.ReadAllText(worker);
        Assert.Contains("context.Log($\"MyWorker ran {value} times\");".Replace("MyWorker", "TplWorker"), code);
        File.WriteAllText(worker, code.Replace("context.Log($\"TplWorker ran {value} times\");",
            "context.Log($\"TplWorker ran {value} times {Newtonsoft.Json.JsonConvert.SerializeObject(new { value })}\");"));

        string dll = Build(project, "TplWorker");
        Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(dll)!, "Newtonsoft.Json.dll")), "the dependency is in the output");

        using var pm = PostmasterCluster.StartNew(new ClusterOptions
        {
            Name = "template",
            Workers = { new WorkerSpec("tpl", $"{dll}:TplWorker.Worker") },
        });
        pm.WaitForLog("TplWorker ran 1 times {\"value\":1}");
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void The_README_example_builds_clean_and_runs_as_a_static_worker()
    {
        string readme = File.ReadAllText(Path.Combine(RepositoryRoot.Path, "README.md"));
        string project = Path.Combine(_dir, "MyWorkers");
        Directory.CreateDirectory(project);
        File.WriteAllText(Path.Combine(project, "MyWorkers.csproj"), Example(readme, "MyWorkers.csproj"));
        File.WriteAllText(Path.Combine(project, "Counter.cs"), Example(readme, "Counter.cs"));
        string dll = Build(project, "MyWorkers");

        using var pm = PostmasterCluster.StartNew(new ClusterOptions
        {
            Name = "readme",
            Workers = { new WorkerSpec("counter", $"{dll}:MyWorkers.Counter") { Count = 2 } },
        });
        pm.WaitForLog("counter is 3");
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    /// <summary>The fenced block that follows <c>&lt;!-- example: NAME --&gt;</c> in the README.</summary>
    private static string Example(string readme, string name)
    {
        var m = Regex.Match(readme, $"<!-- example: {Regex.Escape(name)} -->\\s*```[a-z]*\\n(.*?)```", RegexOptions.Singleline);
        Assert.True(m.Success, $"README.md has no example block \"{name}\"");
        return m.Groups[1].Value;
    }

    /// <summary>Builds the project against out/packages and nuget.org, in a package cache of its own (so the SDK packed
    /// by this run is the one used), with warnings as errors; returns the built library's path.</summary>
    private string Build(string project, string assembly)
    {
        File.WriteAllText(Path.Combine(project, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="postmaster" value="{Packages}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
              </packageSources>
            </configuration>
            """);
        var r = Dotnet(project, "build", "-c", "Release", "-nologo", "-warnaserror", "-p:TreatWarningsAsErrors=true");
        Assert.Matches(new Regex(@"\b0 Warning\(s\)"), r.Stdout);
        string dll = Path.Combine(project, "bin", "Release", "net10.0", assembly + ".dll");
        Assert.True(File.Exists(dll), $"no {dll} after the build:\n{r}");
        return dll;
    }

    private CliResult Dotnet(string workingDirectory, params string[] args)
    {
        var env = new Dictionary<string, string>
        {
            ["NUGET_PACKAGES"] = Path.Combine(_dir, "nuget-packages"),
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_NOLOGO"] = "1",
        };
        var r = ProcessRunner.Run("dotnet", args, env, BuildTimeout, workingDirectory);
        Assert.True(r.ExitCode == 0, $"dotnet {string.Join(' ', args)} failed:\n{r}");
        return r;
    }
}
