using System.Text.Json;
using Postmaster.Configuration;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Cli;

/// <summary><c>postmaster config</c> as pg_settings: values in effect with their source, and what a reload or a
/// restart would change; <c>--describe-config</c> as <c>postgres --describe-config</c>.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class ConfigCommandTests
{
    [Fact]
    public void Without_a_server_the_files_values_are_shown_with_file_and_line()
    {
        using var pm = Clusters.Bare("config-files", "max_backends = 42", "worker.w.entry = 'idle'");
        var r = pm.Run("config");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.StartsWith("settings the configuration file gives (no server is running)", r.Stdout);
        string line = Row(r.Stdout, "max_backends");
        Assert.Contains(" 42 ", line);
        Assert.Contains($"{pm.ConfigPath}:", line);
        Assert.Contains("restart", line);
        Assert.Contains(" idle ", Row(r.Stdout, "worker.w.entry"));
        Assert.Contains("default", Row(r.Stdout, "shared_memory_size"));

        using var doc = Json(pm.Run("config", "--json", "MAX_BACKENDS"));
        var s = Assert.Single(doc.RootElement.GetProperty("settings").EnumerateArray());
        Assert.Equal("42", s.GetProperty("value").GetString());
        Assert.Equal("file", s.GetProperty("source").GetString());
        Assert.Equal(pm.ConfigPath, s.GetProperty("file").GetString());
        Assert.Equal("100", s.GetProperty("default").GetString());
        Assert.Equal(JsonValueKind.Null, s.GetProperty("pending").ValueKind);
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("server_pid").ValueKind);
    }

    [Fact]
    public void A_running_server_shows_what_is_in_effect_and_what_a_reload_or_a_restart_would_change()
    {
        using var pm = Clusters.Bare("config-running", "backend_pool_size = 1", "worker.w.entry = 'idle'");
        pm.Start("-c", "max_backends=30");
        string settingsFile = Path.Combine(pm.DataDirectory, "postmaster.settings");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(settingsFile));

        File.AppendAllText(pm.ConfigPath, "max_backends = 40\nshared_memory_size = 16MB\nbackend_pool_size = 2\nworker.x.entry = 'idle'\n");
        File.WriteAllText(pm.ConfigPath, File.ReadAllText(pm.ConfigPath).Replace("worker.w.entry = 'idle'", ""));
        using (var doc = Json(pm.Run("config", "--json")))
        {
            Assert.Equal(pm.PostmasterPid, doc.RootElement.GetProperty("server_pid").GetInt32());
            Assert.Equal("running", doc.RootElement.GetProperty("values").GetString());
            var byName = doc.RootElement.GetProperty("settings").EnumerateArray().ToDictionary(e => e.GetProperty("name").GetString()!);
            // -c wins over the file at a reload too: nothing pending.
            Assert.Equal("30", byName["max_backends"].GetProperty("value").GetString());
            Assert.Equal("command line", byName["max_backends"].GetProperty("source").GetString());
            Assert.Equal("-c max_backends=30", byName["max_backends"].GetProperty("option").GetString());
            Assert.Equal(JsonValueKind.Null, byName["max_backends"].GetProperty("pending").ValueKind);
            Assert.Equal("restart", byName["shared_memory_size"].GetProperty("pending").GetString());
            Assert.Equal("16MB", byName["shared_memory_size"].GetProperty("pending_value").GetString());
            Assert.Equal("reload", byName["backend_pool_size"].GetProperty("pending").GetString());
            Assert.Equal("1", byName["backend_pool_size"].GetProperty("value").GetString());
            Assert.Equal("reload", byName["worker.w.entry"].GetProperty("pending").GetString()); // removed
            Assert.Equal(JsonValueKind.Null, byName["worker.w.entry"].GetProperty("pending_value").ValueKind);
            Assert.Equal(JsonValueKind.Null, byName["worker.x.entry"].GetProperty("value").ValueKind); // added
            Assert.Equal("idle", byName["worker.x.entry"].GetProperty("pending_value").GetString());
        }
        var text = pm.Run("config");
        Assert.Contains("restart (16MB)", Row(text.Stdout, "shared_memory_size"));
        Assert.Contains("pending: ", text.Stdout);

        pm.Reload();
        Wait.Until(() => Json(pm.Run("config", "--json", "backend_pool_size")).RootElement.GetProperty("settings")[0].GetProperty("value").GetString() == "2",
            "the reload is in effect");
        var after = pm.Run("config").Stdout;
        Assert.DoesNotContain("reload (", Row(after, "backend_pool_size"));
        Assert.Contains("restart (16MB)", Row(after, "shared_memory_size"));
        Assert.DoesNotContain("worker.w.entry", after);
        Assert.Contains(" idle ", Row(after, "worker.x.entry"));

        pm.Stop();
        Assert.False(File.Exists(settingsFile), "postmaster.settings is removed at shutdown");
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void A_tampered_settings_file_is_not_trusted_and_the_files_are_shown_instead()
    {
        using var pm = Clusters.Bare("config-tampered", "max_backends = 42");
        pm.Start();
        string settingsFile = Path.Combine(pm.DataDirectory, "postmaster.settings");
        foreach (string garbage in new[] { "{\"format\":\"postmaster.settings\",\"version\":1,\"pid\":1,\"loaded_at\":\"x\"}", "not json", "{\"format\":\"postmaster.settings\",\"version\":9}" })
        {
            File.WriteAllText(settingsFile, garbage);
            var r = pm.Run("config", "max_backends");
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains("the settings in effect in the running server", r.Stderr);
            Assert.StartsWith("settings the configuration file gives (the running server's", r.Stdout);
            Assert.Contains(" 42 ", Row(r.Stdout, "max_backends"));
            Assert.DoesNotContain("   at ", r.Stderr);
        }
        // Not a regular file: a FIFO (a blocking read would hang the command) and a link to an endless file.
        foreach (var make in new Action[]
        {
            () => Assert.Equal(0, ProcessRunner.Run("mkfifo", [settingsFile]).ExitCode),
            () => File.CreateSymbolicLink(settingsFile, "/dev/zero"),
        })
        {
            File.Delete(settingsFile);
            make();
            var r = pm.Run("config", "max_backends");
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains("the settings in effect in the running server", r.Stderr);
            Assert.Contains(" 42 ", Row(r.Stdout, "max_backends"));
        }
        File.Delete(settingsFile);
        pm.Reload(); // the server writes it again
        Wait.Until(() => pm.Run("config").Stdout.StartsWith("settings in effect", StringComparison.Ordinal), "the settings file is rewritten");
        pm.Stop();
    }

    [Fact]
    public void Errors_name_the_parameter_or_the_file_line()
    {
        using var pm = Clusters.Bare("config-errors", "max_backends = 42");
        var unknown = pm.Run("config", "max_backend");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("unrecognized configuration parameter \"max_backend\"", unknown.Stderr);
        Assert.Contains("Did you mean \"max_backends\"?", unknown.Stderr);
        var noWorker = pm.Run("config", "worker.nope.entry");
        Assert.Equal(1, noWorker.ExitCode);
        Assert.Contains("worker \"nope\" is not configured", noWorker.Stderr);

        File.AppendAllText(pm.ConfigPath, "max_backends = lots\n");
        var bad = pm.Run("config");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains(pm.ConfigPath, bad.Stderr);
        Assert.Contains("contains errors", bad.Stderr);
        Assert.DoesNotContain("   at ", bad.Stderr);
    }

    [Fact]
    public void The_catalogue_lists_every_setting_once()
    {
        using var pm = Clusters.Empty("config-describe");
        var r = pm.RunPostmaster("config", "--describe-config");
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        int expected = SettingCatalog.All.Count + WorkerSettingCatalog.Attributes.Count;
        Assert.Equal(expected, lines.Length);
        Assert.All(lines, l => Assert.Equal(9, l.Split('\t').Length));
        Assert.Contains(lines, l => l.StartsWith("max_backends\trestart\t", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("worker.NAME.entry\t", StringComparison.Ordinal));

        using var doc = Json(pm.RunPostmaster("config", "--describe-config", "--json"));
        Assert.Equal(expected, doc.RootElement.GetArrayLength());
        var first = doc.RootElement[0];
        Assert.Equal(SettingCatalog.All[0].Name, first.GetProperty("name").GetString());
        Assert.Equal(2, pm.RunPostmaster("config", "--describe-config", "max_backends").ExitCode);
    }

    private static string Row(string table, string name) =>
        table.Split('\n').FirstOrDefault(l => l.StartsWith(name + " ", StringComparison.Ordinal)) ?? throw new Xunit.Sdk.XunitException($"no row \"{name}\" in:\n{table}");

    private static JsonDocument Json(CliResult r)
    {
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonDocument.Parse(r.Stdout);
    }
}
