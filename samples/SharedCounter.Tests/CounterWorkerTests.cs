using System.Text.RegularExpressions;
using Postmaster.Testing;
using SharedCounter;
using Xunit;

namespace SharedCounter.Tests;

/// <summary>The sample's tests, written with Postmaster.Testing: each starts a real instance in a temporary data
/// directory, runs the worker as a static worker, and checks on dispose that nothing leaked.</summary>
public sealed class CounterWorkerTests
{
    [Fact]
    public async Task Three_workers_add_up_exactly()
    {
        await using var pm = await PostmasterCluster.StartAsync(new ClusterOptions
        {
            Name = "counter",
            Workers = { WorkerSpec.For<CounterWorker>("counter", "5000") with { Count = 3 } },
        });
        pm.WaitForWorker("counter", WorkerState.Done);
        var done = Regex.Matches(pm.ServerLog(), "counter worker done at (\\d+)").Select(m => long.Parse(m.Groups[1].Value)).ToList();
        Assert.Equal(3, done.Count);
        Assert.Equal(15_000, done.Max()); // the last one to finish saw every increment
        Assert.Single(pm.Shmem().Registry, r => r.Name == CounterWorker.SegmentName);
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public async Task A_killed_counter_worker_is_recovered_and_the_others_finish()
    {
        await using var pm = await PostmasterCluster.StartAsync(new ClusterOptions
        {
            Name = "counter-kill",
            Workers = { WorkerSpec.For<CounterWorker>("counter") with { Count = 2 } }, // count until stopped
        });
        var backends = pm.WaitForBackends(b => b.Count == 2, "both counter workers");
        var before = pm.Status();
        pm.Kill(backends[0]);
        // Killed outside the lock: reconciled; inside it (or while acquiring): a full restart. Either way the instance
        // recovers and runs both workers again.
        pm.WaitForRecovery(before);
        pm.WaitForBackends(b => b.Count == 2 && b.All(x => x.Pid != backends[0].Pid), "both counter workers again");
        pm.Stop();
        pm.AssertNothingLeaked();
    }
}
