using Postmaster.Testing;
using Postmaster.Testing.Internal;
using Xunit;

namespace Postmaster.Tests.Harness;

/// <summary>The harness reads what a later product version prints: unknown fields are skipped and unknown state
/// words read as Unknown; what a stopped server leaves out keeps its default.</summary>
public sealed class InspectionJsonTests
{
    [Fact]
    public void Status_with_fields_and_states_this_harness_does_not_know_is_read()
    {
        var s = InspectionJson.Parse<ClusterStatus>("""
            {"running": true, "pid": 42, "state": "hibernating", "novelty": {"x": [1, 2]},
             "sharedMemory": {"type": "sysv", "key": 7, "id": 8, "size": 9, "hugePages": true},
             "fullRestarts": 2, "reconciles": 5,
             "workers": [{"name": "w.2", "state": "sleeping", "pid": null, "restarts": 1, "failures": 0, "mood": "fine"}],
             "backends": [{"pid": 43, "slot": 0, "name": "w.1", "entry": "idle", "state": "idle (pool)", "pool": true,
                           "startedAt": "2026-12-01T10:00:00.123Z", "restarts": 0, "dsmSegments": 0}]}
            """, "status");
        Assert.Equal(ServerState.Unknown, s.State);
        Assert.Equal(42, s.Pid);
        Assert.Equal((2L, 5L), (s.FullRestarts!.Value, s.Reconciles!.Value));
        Assert.Equal(WorkerState.Unknown, s.Workers.Single().State);
        Assert.Equal(BackendState.Idle, s.Backends.Single().State);
        Assert.Empty(s.RunningBackends);
        Assert.Equal(s.Workers, s.InstancesOf("w"));
        Assert.Empty(s.InstancesOf("w.2x"));
        Assert.Equal(new DateTimeOffset(2026, 12, 1, 10, 0, 0, 123, TimeSpan.Zero), s.Backends.Single().StartedAt);
    }

    [Fact]
    public void A_stopped_servers_status_keeps_the_defaults()
    {
        var s = InspectionJson.Parse<ClusterStatus>("""{"running": false, "dataDirectory": "/d"}""", "status");
        Assert.Equal(ServerState.Stopped, s.State);
        Assert.Empty(s.Workers);
        Assert.Empty(s.Backends);
        Assert.Null(s.FullRestarts);
    }

    [Fact]
    public void Output_that_is_not_json_is_a_cluster_exception_quoting_it()
    {
        var e = Assert.Throws<ClusterException>(() => InspectionJson.Parse<ShmemReport>("postmaster: oops", "shmem"));
        Assert.Contains("shmem printed JSON the harness cannot read", e.Message);
        Assert.EndsWith("postmaster: oops", e.Message);
    }
}
