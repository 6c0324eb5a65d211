using System.Text.Json;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Lifecycle;

/// <summary>log_destination = json|both: JSON lines in log_directory, one file for the postmaster and one per backend.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class LoggingTests
{
    [Fact]
    public void Json_destination_writes_json_lines_for_the_postmaster_and_each_backend()
    {
        using var pm = Clusters.Bare("jsonlog", "log_destination = both", "log_directory = 'jsonlogs'", "worker.w.entry = 'lock-hold'");
        pm.Start();
        pm.WaitForLog("is holding lock");
        pm.Stop();
        string dir = Path.Combine(pm.DataDirectory, "jsonlogs");
        var pmFile = Directory.GetFiles(dir, "postmaster-*.json").Single();
        var lines = File.ReadAllLines(pmFile).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Contains(lines, l => l.GetProperty("RenderedMessage").GetString()!.StartsWith("postmaster is ready"));
        Assert.All(lines, l => Assert.True(l.GetProperty("Properties").TryGetProperty("Severity", out _)));
        var backendFile = Directory.GetFiles(dir, "w-*.json").Single();
        var backendLines = File.ReadAllLines(backendFile).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Contains(backendLines, l => l.GetProperty("RenderedMessage").GetString()!.Contains("is holding lock"));
        Assert.All(backendLines, l => Assert.Equal("w", l.GetProperty("BackendType").GetString()));
    }

    [Fact]
    public void Reload_forwards_SIGHUP_to_every_backend()
    {
        using var pm = Clusters.Bare("sighup", "worker.w.entry = 'idle'", "worker.w.count = 2", "log_min_messages = debug1");
        pm.Start();
        pm.WaitForBackends(b => b.Count == 2, "two workers");
        Assert.Equal(0, pm.Run("reload").ExitCode);
        pm.WaitForLog("background worker \"w.1\" received SIGHUP");
        pm.WaitForLog("background worker \"w.2\" received SIGHUP");
        pm.Stop();
    }
}
