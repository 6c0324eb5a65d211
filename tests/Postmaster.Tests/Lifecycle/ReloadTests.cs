using Postmaster.Shmem.Os;
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
        using var pm = new PmInstance("reload");
        pm.StartOk();
        pm.Configure("log_min_messages = debug1", "max_backends = 7");
        Assert.Equal(0, pm.Do("reload").ExitCode);
        Wait.Until(() => pm.Log.Contains("max_backends"), "the reload to be logged");
        var log = pm.Log;
        Assert.Contains("received SIGHUP, reloading configuration files", log);
        Assert.Contains("parameter \"log_min_messages\" changed to \"debug1\"", log);
        Assert.Contains("parameter \"max_backends\" cannot be changed without restarting the server", log);
        Assert.Equal(0, pm.Stop().ExitCode);
        Assert.Contains("DEBUG1:", pm.Log); // the new level took effect
    }

    [Fact]
    public void Reload_with_an_invalid_file_keeps_the_old_values()
    {
        using var pm = new PmInstance("reloadbad");
        pm.StartOk();
        pm.Configure("log_min_messages = verbose");
        Assert.Equal(0, pm.Do("reload").ExitCode);
        Wait.Until(() => pm.Log.Contains("no changes were applied"), "the failed reload to be logged");
        Assert.Contains("invalid value for parameter \"log_min_messages\": \"verbose\"", pm.Log);
        Assert.True(pm.Running);
        Assert.Equal(0, pm.Stop().ExitCode);
        Assert.DoesNotContain("DEBUG1:", pm.Log);
    }

    [Fact]
    public void Shutdown_escalates_one_way_and_ignores_SIGHUP_while_stopping_fast()
    {
        using var pm = new PmInstance("escalate");
        pm.StartOk();
        int pid = pm.Pid;
        // Without backends every mode completes at once; what is checked is the order of what gets logged.
        Assert.True(ProcessControl.Signal(pid, Signals.SIGINT));
        Wait.Until(() => !pm.Running, "the fast shutdown to finish");
        Assert.Contains("received fast shutdown request", pm.Log);
        Assert.DoesNotContain("received smart shutdown request", pm.Log);
    }
}
