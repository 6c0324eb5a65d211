using System.Text.Json;
using System.Text.RegularExpressions;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Os;
using Postmaster.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Postmaster.Tests.Crash;

/// <summary>
/// Crash-recovery soak (Category=Long: `./run.sh test --long`, and in CI): for many rounds a random DSM-churning
/// backend is SIGKILLed while the others create, attach and detach segments. Each kill ends in a reconcile or, when
/// the victim died holding the DSM lock, a full restart. Afterwards every segment's reference count equals its real
/// attachments, and after a stop nothing is left anywhere.
/// </summary>
[Collection(IntegrationCollection.Name)]
[Trait("Category", "Long")]
public sealed class SoakTests(ITestOutputHelper output)
{
    private const int Churners = 4;
    private const int Rounds = 25;

    [Theory]
    [InlineData("posix")]
    [InlineData("sysv")]
    public void Random_SIGKILLs_while_backends_churn_DSM_leave_reference_counts_exact_and_nothing_behind(string dsmType)
    {
        using var pm = new PmInstance("soak-" + dsmType);
        Assert.Equal(0, pm.Init().ExitCode);
        File.WriteAllLines(pm.ConfigPath, File.ReadAllLines(pm.ConfigPath).Where(l => !l.StartsWith("worker.demo")).Concat(new[]
        {
            $"dynamic_shared_memory_type = {dsmType}", "backend_pool_size = 0", "crash_restart_limit = 1000",
            "worker.c.entry = 'dsm-churn'", $"worker.c.count = {Churners}", "worker.c.argument = '4000'",
            "worker.c.restart = always", "worker.c.restart_delay = 5ms", "worker.c.restart_delay_max = 20ms",
        }));
        pm.StartOk();
        var rnd = new Random(12345);
        int reconciled = 0, restarts = 0;
        for (int round = 0; round < Rounds; round++)
        {
            var running = pm.WaitForBackends(b => b.Count == Churners, "all churners running");
            var victim = running[rnd.Next(running.Count)];
            ProcessControl.Signal(victim.Pid, Signals.SIGKILL);
            string reconcileLine = $"of background worker \"{victim.Name}\" (PID {victim.Pid})";
            int restartsBefore = Regex.Matches(pm.Log, "all backends terminated; reinitializing").Count;
            Wait.Until(() => pm.Log.Contains(reconcileLine) ||
                             Regex.Matches(pm.Log, "all backends terminated; reinitializing").Count > restartsBefore,
                $"round {round}: recovery after killing PID {victim.Pid}");
            if (pm.Log.Contains(reconcileLine))
                reconciled++;
            else
                restarts++;
        }
        output.WriteLine($"{Rounds} kills: {reconciled} reconciled, {restarts} full restarts");

        // Quiesce: every current churner finishes its iterations and idles with what it holds.
        var final = pm.WaitForBackends(b => b.Count == Churners, "all churners running");
        Wait.Until(() => final.All(b => pm.Log.Contains($"[{b.Pid}] LOG:  dsm churn done")), "every churner to finish churning");
        var live = final.Select(b => b.Pid).ToHashSet();
        var segments = JsonDocument.Parse(pm.Do("shmem", "--json").Stdout).RootElement.GetProperty("dsmSegments").EnumerateArray().ToList();
        foreach (var s in segments)
        {
            var pids = s.GetProperty("attachedPids").EnumerateArray().Select(p => p.GetInt32()).ToList();
            int expected = 1 + pids.Count + (s.GetProperty("pinned").GetBoolean() ? 1 : 0);
            Assert.True(expected == s.GetProperty("referenceCount").GetInt32(),
                $"segment {s.GetProperty("handle")}: reference count {s.GetProperty("referenceCount")} but {pids.Count} attachments");
            Assert.All(pids, p => Assert.Contains(p, live)); // no reference of a dead process survives
            Assert.NotEmpty(pids); // a segment nobody holds would have been destroyed
        }

        Assert.Equal(0, pm.Stop().ExitCode);
        var config = DsmConfig.For(dsmType == "sysv" ? DsmType.SysV : DsmType.Posix, pm.DataDir, FileStat.TryStat(pm.DataDir)!.Value);
        Assert.Empty(DsmOrphanCleanup.FindTagged(config));
        Assert.Equal(new[] { "log", "postmaster.conf", "postmaster.opts" },
            Directory.EnumerateFileSystemEntries(pm.DataDir).Select(Path.GetFileName).Order().ToArray());
    }
}
