using Postmaster.Logging;
using Postmaster.Configuration;
using Xunit;

namespace Postmaster.Tests.Configuration;

public sealed class ReloadTests : IDisposable
{
    private readonly TempConfigDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void Reload_applies_reloadable_settings_and_keeps_restart_only_ones()
    {
        Settings current = ConfigLoader.Load(_directory.WriteLines("max_backends = 50", "log_min_messages = info"), []);

        ReloadResult result = ConfigLoader.Reload(current,
            _directory.WriteLines("max_backends = 60", "log_min_messages = debug1", "shared_memory_type = posix"), []);

        Assert.Equal(Severity.Debug1, result.Next.LogMinMessages);
        Assert.Equal(50, result.Next.MaxBackends);
        Assert.Equal(SharedMemoryType.SysV, result.Next.SharedMemoryType);
        Assert.Equal(current.Get("max_backends").Source, result.Next.Get("max_backends").Source);
        Assert.Equal(["parameter \"log_min_messages\" changed to \"debug1\""], result.Changed);
        Assert.Equal(
            [
                "parameter \"shared_memory_type\" cannot be changed without restarting the server",
                "parameter \"max_backends\" cannot be changed without restarting the server",
            ],
            result.PendingRestart);
    }

    [Fact]
    public void Reload_without_changes_reports_nothing()
    {
        string path = _directory.WriteLines("max_backends = 50", "worker.w.entry = idle");
        Settings current = ConfigLoader.Load(path, ["backend_pool_size=3"]);

        ReloadResult result = ConfigLoader.Reload(current, _directory.WriteLines("# moved", "max_backends = 50",
            "worker.w.entry = idle"), ["backend_pool_size=3"]);

        Assert.Empty(result.Changed);
        Assert.Empty(result.PendingRestart);
        Assert.Equal(2, result.Next.Get("max_backends").Source.Line);
    }

    [Fact]
    public void Removed_setting_returns_to_its_default()
    {
        Settings current = ConfigLoader.Load(_directory.WriteLines("shutdown_kill_timeout = 20s"), []);

        ReloadResult result = ConfigLoader.Reload(current, _directory.WriteLines("# empty"), []);

        Assert.Equal(TimeSpan.FromSeconds(5), result.Next.ShutdownKillTimeout);
        Assert.Equal(SettingSource.Default, result.Next.Get("shutdown_kill_timeout").Source);
        Assert.Equal(["parameter \"shutdown_kill_timeout\" changed to \"5s\""], result.Changed);
    }

    [Fact]
    public void Reload_reports_added_removed_and_changed_workers()
    {
        Settings current = ConfigLoader.Load(
            _directory.WriteLines("worker.keep.entry = idle", "worker.gone.entry = idle", "worker.edit.entry = idle"), []);

        ReloadResult result = ConfigLoader.Reload(current, _directory.WriteLines(
            "worker.keep.entry = idle",
            "worker.edit.entry = idle",
            "worker.edit.count = 3",
            "worker.edit.restart = never",
            "worker.new.entry = idle"), []);

        Assert.Equal(["edit", "keep", "new"], result.Next.Workers.Keys);
        Assert.Equal(3, result.Next.Workers["edit"].Count);
        Assert.Equal(
            [
                "parameter \"worker.edit.count\" changed to \"3\"",
                "parameter \"worker.edit.restart\" changed to \"never\"",
                "worker \"gone\" removed",
                "worker \"new\" added",
            ],
            result.Changed);
        Assert.Empty(result.PendingRestart);
    }

    [Fact]
    public void Reload_keeps_command_line_overrides()
    {
        Settings current = ConfigLoader.Load(_directory.WriteLines("backend_pool_size = 1"), ["backend_pool_size=9"]);

        ReloadResult result = ConfigLoader.Reload(current, _directory.WriteLines("backend_pool_size = 4"),
            ["backend_pool_size=9"]);

        Assert.Equal(9, result.Next.BackendPoolSize);
        Assert.Empty(result.Changed);
    }

    [Fact]
    public void Reload_of_an_invalid_file_throws_and_changes_nothing()
    {
        Settings current = ConfigLoader.Load(_directory.WriteLines("log_min_messages = warning"), []);

        ConfigException exception = Assert.Throws<ConfigException>(() => ConfigLoader.Reload(current,
            _directory.WriteLines("log_min_messages = debug1", "huge_pages = maybe"), []));

        Assert.Equal(2, Assert.Single(exception.Errors).Line);
        Assert.Equal(Severity.Warning, current.LogMinMessages);
    }
}
