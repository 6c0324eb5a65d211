using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Area;

/// <summary>The crash semantics of the shared hash table through a real server: a worker killed between operations is
/// reconciled and the table keeps every key; one killed inside an operation (holding a partition lock) makes the
/// postmaster restart the instance, which wipes the table, and the server serves again.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class HashTableCrashTests
{
    private static string Entry => $"{Path.Combine(Paths.OutDir, "testchild", "TestChild.dll")}:Postmaster.TestChild.Workers.HashTableWorker";

    [Fact]
    public void Killed_between_operations_is_a_reconcile_and_killed_inside_one_is_a_full_restart()
    {
        using var pm = Clusters.Bare("hash-crash");
        pm.Start();
        var filler = pm.Spawn(Entry, "fill 5000", "filler");
        pm.WaitForLog("filled 5000");
        var since = pm.Status();
        pm.Kill(filler.Pid);
        Assert.Equal(RecoveryKind.Reconcile, pm.WaitForRecovery(since));
        pm.Spawn(Entry, "count", "counter");
        pm.WaitForLog("table has 5000 keys");
        var entry = Assert.Single(pm.Shmem().Registry, r => r.Name == "crash-table");
        Assert.Equal("hash", entry.Type);

        var holder = pm.Spawn(Entry, "hold", "holder");
        pm.WaitForLog("holding the partition lock");
        since = pm.Status();
        pm.Kill(holder.Pid);
        Assert.Equal(RecoveryKind.FullRestart, pm.WaitForRecovery(since));
        Assert.Matches(@"died holding \d+ lightweight locks? \([^)]*SharedHashTable", pm.ServerLog());
        pm.WaitUntilReady();
        Assert.DoesNotContain(pm.Shmem().Registry, r => r.Name == "crash-table"); // a full restart wipes the registry
        pm.Spawn(Entry, "count", "counter-after");
        pm.WaitForLog("table has 0 keys"); // made anew, empty
        pm.Stop();
        pm.AssertNothingLeaked();
    }
}
