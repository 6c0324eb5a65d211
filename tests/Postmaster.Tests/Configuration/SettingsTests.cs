using Postmaster.Logging;
using Postmaster.Configuration;
using Xunit;
using static Postmaster.Tests.Configuration.ConfigAssert;

namespace Postmaster.Tests.Configuration;

public sealed class SettingsTests
{
    [Fact]
    public void Defaults_match_the_documented_values()
    {
        Settings settings = Settings.CreateDefault();

        Assert.Equal(SharedMemoryType.SysV, settings.SharedMemoryType);
        Assert.Equal(8 * SettingUnits.Megabyte, settings.SharedMemorySize);
        Assert.Equal(100, settings.MaxBackends);
        Assert.Equal(HugePages.Try, settings.HugePages);
        Assert.Equal(DynamicSharedMemoryType.Posix, settings.DynamicSharedMemoryType);
        Assert.Equal(0, settings.MinDynamicSharedMemory);
        Assert.Equal(0, settings.DsmMaxSegments);
        Assert.Equal(LogDestination.Stderr, settings.LogDestination);
        Assert.Equal("log", settings.LogDirectory);
        Assert.Equal(Severity.Info, settings.LogMinMessages);
        Assert.Equal(TimeSpan.FromSeconds(5), settings.ShutdownKillTimeout);
        Assert.Equal(2, settings.BackendPoolSize);
        Assert.Empty(settings.BackendPoolPreload);
        Assert.Equal(CrashRecovery.Reconcile, settings.CrashRecovery);
        Assert.True(settings.RestartAfterCrash);
        Assert.Equal(5, settings.CrashRestartLimit);
        Assert.Equal(TimeSpan.FromSeconds(60), settings.CrashRestartInterval);
        Assert.Empty(settings.Workers);
        Assert.All(settings.All, setting => Assert.Equal(SettingSource.Default, setting.Source));
    }

    [Fact]
    public void Empty_file_gives_the_defaults()
    {
        Settings loaded = Load("");

        Assert.Equal(Settings.CreateDefault().All.Select(setting => setting.ToString()),
            loaded.All.Select(setting => setting.ToString()));
    }

    [Fact]
    public void Backend_pool_preload_is_a_comma_separated_list_of_entries()
    {
        Assert.Equal(["idle", "/w/a b.dll:N.T", "lib.dll:X"],
            LoadLine("backend_pool_preload", "' idle, /w/a b.dll:N.T ,, lib.dll:X '").BackendPoolPreload);
        Assert.Empty(LoadLine("backend_pool_preload", "''").BackendPoolPreload);
    }

    [Fact]
    public void Dsm_max_segments_of_zero_is_computed_from_max_backends()
    {
        Assert.Equal(64 + 5 * 100, Settings.CreateDefault().EffectiveDsmMaxSegments);
        Assert.Equal(64 + 5 * 10, LoadLine("max_backends", "10").EffectiveDsmMaxSegments);
        Assert.Equal(7, LoadLine("dsm_max_segments", "7").EffectiveDsmMaxSegments);
    }

    [Theory]
    [InlineData("shared_memory_size", "8MB", "8MB")]
    [InlineData("shared_memory_size", "1536kB", "1536kB")]
    [InlineData("shared_memory_size", "1024MB", "1GB")]
    [InlineData("shared_memory_size", "1000", "1000B")]
    [InlineData("shared_memory_size", "0", "0")]
    [InlineData("crash_restart_interval", "60s", "1min")]
    [InlineData("crash_restart_interval", "1500", "1500ms")]
    [InlineData("crash_restart_interval", "24h", "1d")]
    [InlineData("restart_after_crash", "yes", "on")]
    [InlineData("huge_pages", "ON", "on")]
    [InlineData("log_directory", "'a b'", "a b")]
    [InlineData("max_backends", "12", "12")]
    public void Display_text_uses_the_largest_exact_unit(string name, string value, string display)
    {
        Assert.Equal(display, LoadLine(name, value).Get(name).Display);
    }

    [Fact]
    public void Settings_can_be_looked_up_case_insensitively()
    {
        Settings settings = Load("worker.w.entry = idle");

        Assert.True(settings.TryGet("MAX_BACKENDS", out EffectiveSetting? setting));
        Assert.Equal("max_backends", setting.Name);
        Assert.Equal("idle", settings.Get("Worker.W.Entry").Display);
        Assert.False(settings.TryGet("no_such_thing", out _));
        Assert.Throws<KeyNotFoundException>(() => settings.Get("no_such_thing"));
    }

    [Fact]
    public void Effective_setting_prints_name_value_and_source()
    {
        Assert.Equal($"max_backends = 12 (file \"{FakePath}\" line 1)", LoadLine("max_backends", "12").Get("max_backends").ToString());
        Assert.Equal("huge_pages = try (default)", Settings.CreateDefault().Get("huge_pages").ToString());
    }

    [Fact]
    public void Log_directory_is_relative_to_the_data_directory_unless_absolute()
    {
        Assert.Equal("/data/log", Settings.CreateDefault().ResolveLogDirectory("/data"));
        Assert.Equal("/var/log/pm", LoadLine("log_directory", "/var/log/pm").ResolveLogDirectory("/data"));
    }
}
