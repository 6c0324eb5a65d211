using Postmaster.Shmem.Os;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Cli;

/// <summary>Issue 11 #15: terminate waits for every backend it signalled and fails (exit 1) when one is still running
/// after its timeout.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class TerminateTests
{
    private static string Stubborn => $"{Path.Combine(Paths.OutDir, "testchild", "TestChild.dll")}:Postmaster.TestChild.Workers.StubbornWorker";

    [Fact]
    public void Terminate_waits_for_every_instance_of_a_static_worker()
    {
        using var pm = Clusters.Bare("termall", "worker.w.entry = 'idle'", "worker.w.count = 3");
        pm.Start();
        var rows = pm.WaitForBackends(b => b.Count(x => x.Name.StartsWith("w.")) == 3, "three instances of w");
        var r = pm.Run("terminate", "w");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("terminated 3 backends", r.Stdout);
        foreach (var b in rows)
        {
            Assert.Contains(b.Pid!.Value.ToString(), r.Stdout);
            Assert.False(ProcessControl.IsAlive(b.Pid!.Value), $"PID {b.Pid} still alive when terminate returned");
        }
        pm.Stop();
    }

    [Fact]
    public void A_backend_still_running_after_the_timeout_is_a_failure()
    {
        using var pm = Clusters.Bare("termstuck", $"worker.s.entry = '{Stubborn}'", "worker.s.count = 2", "shutdown_kill_timeout = 100ms");
        pm.Start();
        var rows = pm.WaitForBackends(b => b.Count(x => x.Name.StartsWith("s.")) == 2, "two stubborn workers");
        var r = pm.Run("terminate", "s", "-t", "1");
        CliAssert.OneClearFailure(r, 1);
        Assert.Contains("still running 1 s after SIGTERM", r.Stderr);
        foreach (var b in rows)
            Assert.Contains(b.Pid!.Value.ToString(), r.Stderr);
        Assert.DoesNotContain("terminated", r.Stdout);
        var one = pm.Run("terminate", rows[0].Pid!.Value.ToString(), "-t", "0");
        CliAssert.OneClearFailure(one, 1);
        Assert.Contains($"backend PID {rows[0].Pid} still running", one.Stderr);
        pm.Stop(ShutdownMode.Immediate);
    }
}
