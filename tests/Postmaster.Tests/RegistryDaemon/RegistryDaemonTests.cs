using System.Text.Json;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.RegistryDaemon;

/// <summary>The named DSM registry as backends of a running postmaster use it (PostgreSQL's test_dsm_registry).</summary>
[Collection(IntegrationCollection.Name)]
public sealed class RegistryDaemonTests
{
    private static void Run(PostmasterCluster pm, string worker, string argument, string expectLog)
    {
        var r = pm.Run("spawn", "--worker", worker, "--argument", argument, "--name", worker);
        Assert.True(r.ExitCode == 0, r.ToString());
        pm.WaitForLog(expectLog);
    }

    [Fact]
    public void A_value_stored_by_one_backend_is_read_by_a_new_backend()
    {
        using var pm = Clusters.Bare("registry");
        pm.Start();
        Run(pm, "registry-set", "answer=1236", "registry answer set to 1236 (found=false)");
        Run(pm, "registry-get", "answer", "registry answer is 1236 (found=true)");
        var entries = JsonDocument.Parse(pm.Run("shmem", "--json").Stdout).RootElement.GetProperty("registry").EnumerateArray().ToList();
        var e = Assert.Single(entries);
        Assert.Equal("answer", e.GetProperty("name").GetString());
        Assert.Equal(8, e.GetProperty("size").GetInt64());
        Assert.Equal("ready", e.GetProperty("state").GetString());
        Assert.Contains("answer", pm.Run("shmem").Stdout);
        pm.Stop();
    }

    [Fact]
    public void Entries_survive_a_reconciled_crash_and_are_wiped_by_a_full_restart()
    {
        using var pm = Clusters.Bare("registry-crash", "worker.i.entry = 'idle'", "worker.l.entry = 'lock-hold'");
        pm.Start();
        pm.WaitForLog("is holding lock");
        Run(pm, "registry-set", "answer=1236", "registry answer set to 1236");

        var idle = pm.WaitForBackends(b => b.Any(x => x.Name == "i"), "the idle worker").Single(b => b.Name == "i");
        pm.Kill(idle);
        pm.WaitForLog($"reconciled 0 dynamic shared memory references of background worker \"i\" (PID {idle.Pid})");
        Run(pm, "registry-get", "answer", "registry answer is 1236 (found=true)");

        var holder = pm.Status().Backends.Single(b => b.Name == "l");
        pm.Kill(holder);
        pm.WaitForFullRestart();
        var r = pm.Run("spawn", "--worker", "registry-get", "--argument", "answer", "--name", "after");
        Assert.Equal(0, r.ExitCode);
        pm.WaitForLog("registry answer is 0 (found=false)");
        pm.Stop();
    }
}
