using Postmaster.Testing;
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
        using var pm = PostmasterCluster.StartNew(new ClusterOptions
        {
            Name = "soak-" + dsmType,
            Settings = { ["dynamic_shared_memory_type"] = dsmType, ["crash_restart_limit"] = "1000" },
            Workers =
            {
                new WorkerSpec("c", "dsm-churn", "4000")
                {
                    Count = Churners, Restart = WorkerRestart.Always,
                    RestartDelay = TimeSpan.FromMilliseconds(5), RestartDelayMax = TimeSpan.FromMilliseconds(20),
                },
            },
        });
        var rnd = new Random(12345);
        var outcomes = new Dictionary<RecoveryKind, int> { [RecoveryKind.Reconcile] = 0, [RecoveryKind.FullRestart] = 0 };
        for (int round = 0; round < Rounds; round++)
        {
            var running = pm.WaitForBackends(b => b.Count == Churners, $"round {round}: all churners running");
            pm.Kill(running[rnd.Next(running.Count)]);
            outcomes[pm.WaitForRecovery()]++;
        }
        var totals = pm.Status();
        output.WriteLine($"{Rounds} kills: {outcomes[RecoveryKind.Reconcile]} reconciled, {outcomes[RecoveryKind.FullRestart]} full restarts");
        Assert.Equal(Rounds, totals.Reconciles + totals.FullRestarts); // one recovery per kill, counted by the server

        // Quiesce: every current churner finishes its iterations and idles with what it holds.
        var final = pm.WaitForBackends(b => b.Count == Churners, "all churners running");
        pm.WaitUntil(() => final.All(b => pm.ServerLog().Contains($"[{b.Pid}] LOG:  dsm churn done")), "every churner to finish churning");
        var live = final.Select(b => b.Pid!.Value).ToHashSet();
        foreach (var s in pm.Shmem().DsmSegments)
        {
            int expected = 1 + s.AttachedPids.Count + (s.Pinned ? 1 : 0);
            Assert.True(expected == s.ReferenceCount, $"segment {s.Handle}: reference count {s.ReferenceCount} but {s.AttachedPids.Count} attachments");
            Assert.All(s.AttachedPids, p => Assert.Contains(p, live)); // no reference of a dead process survives
            Assert.NotEmpty(s.AttachedPids); // a segment nobody holds would have been destroyed
        }

        pm.Stop();
        pm.AssertNothingLeaked();
        Assert.Equal(new[] { "log", "postmaster.conf", "postmaster.opts" },
            Directory.EnumerateFileSystemEntries(pm.DataDirectory).Select(Path.GetFileName).Order().ToArray());
    }
}
