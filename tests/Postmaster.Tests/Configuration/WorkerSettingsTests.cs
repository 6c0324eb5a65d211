using Postmaster.Configuration;
using Xunit;
using static Postmaster.Tests.Configuration.ConfigAssert;

namespace Postmaster.Tests.Configuration;

public sealed class WorkerSettingsTests
{
    [Fact]
    public void Worker_with_only_an_entry_gets_every_default()
    {
        Settings settings = Load("worker.w.entry = idle");

        Assert.Equal(
            new WorkerSettings("w", "idle", 1, "", RestartPolicy.OnFailure, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60),
                TimeSpan.FromSeconds(30)),
            settings.Workers["w"]);
        Assert.Equal(SettingSource.Default, settings.Get("worker.w.count").Source);
    }

    [Fact]
    public void Worker_attributes_are_read()
    {
        Settings settings = Load("""
            worker.Loader.entry = 'plugins/Loader.dll:Acme.Loader'
            worker.loader.count = 4
            worker.LOADER.argument = '--fast'
            worker.loader.restart = always
            worker.loader.restart_delay = 250ms
            worker.loader.restart_delay_max = 2min
            worker.loader.stable_period = 1h
            """);

        Assert.Equal(
            new WorkerSettings("loader", "plugins/Loader.dll:Acme.Loader", 4, "--fast", RestartPolicy.Always,
                TimeSpan.FromMilliseconds(250), TimeSpan.FromMinutes(2), TimeSpan.FromHours(1)),
            Assert.Single(settings.Workers).Value);
    }

    [Fact]
    public void Workers_are_ordered_by_name_and_listed_after_the_fixed_settings()
    {
        Settings settings = Load("worker.zeta.entry = idle\nworker.alpha.entry = idle\nworker.mid-1.entry = idle\n");

        Assert.Equal(["alpha", "mid-1", "zeta"], settings.Workers.Keys);
        Assert.Equal(
            SettingCatalog.All.Count + settings.Workers.Count * WorkerSettingCatalog.Attributes.Count, settings.All.Count);
        Assert.Equal("worker.alpha.entry", settings.All[SettingCatalog.All.Count].Name);
    }

    [Fact]
    public void Command_line_can_add_and_change_workers()
    {
        Settings settings = Load("worker.a.entry = idle\n", "worker.a.count=3", "worker.b.entry=x.dll:N.T");

        Assert.Equal(3, settings.Workers["a"].Count);
        Assert.Equal("x.dll:N.T", settings.Workers["b"].Entry);
    }

    [Fact]
    public void Worker_without_entry_is_an_error_at_its_first_key()
    {
        ConfigError error = SingleError("max_backends = 5\nworker.w.count = 2\nworker.w.restart = always\n");

        Assert.Equal(2, error.Line);
        Assert.Equal(
            $"worker \"w\" has no \"worker.w.entry\" parameter (first setting of the worker in file \"{FakePath}\" line 2)",
            error.Message);
        Assert.Equal("Every worker needs an entry, e.g. worker.w.entry = 'idle'.", error.Hint);
    }

    [Fact]
    public void Worker_defined_only_on_the_command_line_without_entry_names_the_option()
    {
        ConfigError error = SingleError("", "worker.w.count=2");

        Assert.Equal("-c worker.w.count=2", error.File);
        Assert.Contains("command line option \"-c worker.w.count=2\"", error.Message);
    }

    [Fact]
    public void Invalid_entry_value_is_reported_once()
    {
        ConfigError error = SingleError("worker.w.entry = ''\nworker.w.count = 2\n");

        Assert.Equal(1, error.Line);
        Assert.Equal($"invalid value for parameter \"worker.w.entry\": \"\" (file \"{FakePath}\" line 1)", error.Message);
    }

    [Theory]
    [InlineData("worker.9lives.entry", "9lives")]
    [InlineData("worker.a.b.entry", "a.b")]
    [InlineData("worker.-x.entry", "-x")]
    public void Invalid_worker_name_is_rejected(string name, string worker)
    {
        ConfigError error = SingleError($"{name} = idle");

        Assert.Equal($"invalid worker name \"{worker}\" in parameter \"{name}\" (file \"{FakePath}\" line 1)", error.Message);
        Assert.Contains(WorkerSettingCatalog.WorkerNamePattern, error.Hint);
    }

    [Fact]
    public void Worker_name_length_is_limited_to_63()
    {
        string longest = "w" + new string('x', WorkerSettingCatalog.MaxWorkerNameLength - 1);

        Assert.True(Load($"worker.{longest}.entry = idle").Workers.ContainsKey(longest));
        ConfigError error = SingleError($"worker.{longest}x.entry = idle");
        Assert.StartsWith($"invalid worker name \"{longest}x\"", error.Message);
    }

    [Theory]
    [InlineData("worker.w.cuont", "worker.w.count")]
    [InlineData("worker.w.restart_dely", "worker.w.restart_delay")]
    [InlineData("wroker.w.count", "worker.w.count")]
    [InlineData("workers.w.entry", "worker.w.entry")]
    public void Misspelt_worker_setting_suggests_the_right_one(string name, string suggestion)
    {
        ConfigError error = SingleError($"worker.w.entry = idle\n{name} = 1");

        Assert.Equal($"unrecognized configuration parameter \"{name}\" in file \"{FakePath}\" line 2", error.Message);
        Assert.Equal($"Did you mean \"{suggestion}\"?", error.Hint);
    }

    [Fact]
    public void Worker_setting_values_are_validated()
    {
        IReadOnlyList<ConfigError> errors = Errors("""
            worker.w.entry = idle
            worker.w.count = 0
            worker.w.restart = sometimes
            worker.w.restart_delay = 2h
            """);

        Assert.Equal([2, 3, 4], errors.Select(error => error.Line));
        Assert.StartsWith("0 is outside the valid range for parameter \"worker.w.count\" (1 .. 10000)", errors[0].Message);
        Assert.Equal("Available values: never, on-failure, always.", errors[1].Hint);
        Assert.StartsWith("2h is outside the valid range for parameter \"worker.w.restart_delay\" (0 .. 1h)", errors[2].Message);
    }

    [Fact]
    public void Restart_delay_max_below_restart_delay_is_rejected()
    {
        ConfigError error = SingleError("worker.w.entry = idle\nworker.w.restart_delay = 5s\nworker.w.restart_delay_max = 2s\n");

        Assert.Equal(3, error.Line);
        Assert.Equal(
            "parameter \"worker.w.restart_delay_max\" (2s) must not be less than \"worker.w.restart_delay\" (5s) "
            + $"(file \"{FakePath}\" line 3)",
            error.Message);
    }

    [Fact]
    public void Restart_delay_above_default_maximum_points_at_the_delay()
    {
        ConfigError error = SingleError("worker.w.entry = idle\nworker.w.restart_delay = 2min\n");

        Assert.Equal(2, error.Line);
        Assert.Equal(
            "parameter \"worker.w.restart_delay_max\" (1min) must not be less than \"worker.w.restart_delay\" (2min) "
            + $"(file \"{FakePath}\" line 2)",
            error.Message);
    }
}
