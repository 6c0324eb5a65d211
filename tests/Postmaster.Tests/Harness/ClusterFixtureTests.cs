using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Harness;

/// <summary>One cluster shared by a test class, as xunit users write it: a class fixture that starts it in
/// <c>InitializeAsync</c> and disposes it in <c>DisposeAsync</c>.</summary>
public sealed class SharedClusterFixture : IAsyncLifetime
{
    public PostmasterCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await PostmasterCluster.StartAsync(new ClusterOptions
    {
        Name = "fixture",
        Workers = { new WorkerSpec("w", "idle") { Count = 2, RestartDelay = TimeSpan.FromMilliseconds(10) } },
    });

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

[Collection(IntegrationCollection.Name)]
public sealed class ClusterFixtureTests(SharedClusterFixture fixture) : IClassFixture<SharedClusterFixture>
{
    private PostmasterCluster Pm => fixture.Cluster;

    [Fact]
    public void A_fixture_cluster_serves_every_test_of_the_class()
    {
        Assert.Equal(ServerState.Ready, Pm.Status().State);
        Assert.Equal(2, Pm.WaitForWorker("w", WorkerState.Running).Count);
    }

    [Fact]
    public void A_killed_worker_of_the_fixture_is_reconciled_and_replaced()
    {
        var victim = Pm.WaitForBackends(b => b.Count == 2, "both workers").First();
        Pm.Kill(victim);
        Pm.WaitForReconcile();
        Pm.WaitForBackends(b => b.Count == 2 && b.All(x => x.Pid != victim.Pid), "the replacement");
    }
}
