using System.Text;
using Postmaster.Shmem.Area;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Registry;
using Postmaster.Tests.Dsm;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Area;

/// <summary>A named shared hash table used by real processes (TestChild "area"): concurrent writers and readers against a
/// model, and what a death inside and outside the table's locks leaves for the supervisor.</summary>
public sealed class SharedHashTableProcessTests
{
    private static ChildProcess Start(DsmTestInstance pm, int slot, string name)
    {
        var child = ChildProcess.TestChild("area", [.. pm.ChildArgs(slot), $"name={name}"]);
        try
        {
            child.WaitForLine("ready");
        }
        catch
        {
            child.Dispose();
            throw;
        }
        return child;
    }

    [Fact]
    public void Two_processes_insert_and_delete_while_a_third_reads_through_growth()
    {
        using var pm = new DsmTestInstance("hash-procs", DsmType.Posix);
        var registry = pm.Registry(0);
        var table = registry.GetNamedHashTable("shared-kv", 0, 64, out bool found);
        Assert.False(found);
        for (int i = 0; i < 200; i++)
            table.Set(Encoding.ASCII.GetBytes("fixed" + i), BitConverter.GetBytes(i));
        using var one = Start(pm, 1, "shared-kv");
        using var two = Start(pm, 2, "shared-kv");
        one.WriteLine("insert 0 30000");
        two.WriteLine("insert 30000 60000");

        // Read the fixed keys the whole time the others insert (the table doubles several times meanwhile).
        long reads = 0;
        var deadline = DateTime.UtcNow + Postmaster.Testing.ClusterOptions.DefaultTimeout;
        while (!one.HasLine("inserted") || !two.HasLine("inserted"))
        {
            for (int i = 0; i < 200; i++)
                Assert.Equal(i, BitConverter.ToInt32(table.Get(Encoding.ASCII.GetBytes("fixed" + i))));
            reads += 200;
            Assert.True(DateTime.UtcNow < deadline, "the writers did not finish in time");
        }
        Assert.Equal("inserted 20000", one.WaitForLine("inserted"));
        Assert.Equal("inserted 20000", two.WaitForLine("inserted"));
        Assert.True(reads > 0);

        one.WriteLine("check 30000 60000"); // each checks the other's range
        two.WriteLine("check 0 30000");
        Assert.Equal("checked 20000", one.WaitForLine("checked"));
        Assert.Equal("checked 20000", two.WaitForLine("checked"));
        Assert.Equal(40_200, table.Count);
        Assert.True(table.Resizes >= 3, $"{table.Resizes} resizes");
        var row = Assert.Single(registry.List());
        Assert.Equal(DsmRegistryEntryType.HashTable, row.Type);
        Assert.True(row.TotalSize > SharedArea.DefaultInitialSegmentSize, $"the registry shows the grown area ({row.TotalSize} bytes)");

        one.WriteLine("exit");
        two.WriteLine("exit");
        Assert.Equal(0, one.WaitForExit());
        Assert.Equal(0, two.WaitForExit());
        Assert.True(registry.Release("shared-kv"));
        Assert.Empty(pm.Control.Inspect()); // the area's every segment is gone with the name
    }

    [Fact]
    public void A_process_killed_inside_the_area_lock_is_seen_holding_it_and_one_killed_between_operations_holds_nothing()
    {
        using var pm = new DsmTestInstance("hash-kill", DsmType.Posix);
        var registry = pm.Registry(0);
        var table = registry.GetNamedHashTable("kill-kv", 0, 64, out _);
        var inspector = new LWLockInspector(pm.Instance.Owners, pm.Instance.Tranches);

        // Between operations: nothing held, so the supervisor reconciles and the table goes on serving.
        using (var idle = Start(pm, 1, "kill-kv"))
        {
            idle.WriteLine("insert 0 3000");
            idle.WaitForLine("inserted");
            idle.Kill(Signals.SIGKILL);
            idle.WaitForExit();
        }
        Assert.Equal(0, pm.Instance.Owners.ReadHeldCount(1));
        Assert.Equal(DsmReconcileStatus.Done, pm.Control.ReconcileSlot(1).Status);
        Assert.Equal(2000, table.Count);
        table.Set("after"u8, "reconcile"u8);
        Assert.Equal("reconcile"u8.ToArray(), table.Get("after"u8));

        // Inside the area lock (allocating an item under a partition lock): the record names both locks, which is
        // what makes the supervisor restart the instance.
        using (var holder = Start(pm, 2, "kill-kv"))
        {
            holder.WriteLine("hold");
            holder.WaitForLine("holding");
            holder.Kill(Signals.SIGKILL);
            holder.WaitForExit();
        }
        var held = inspector.HeldBy(2).Select(h => h.TrancheName).ToList();
        Assert.Contains(SharedArea.TrancheName, held);
        Assert.Contains(SharedHashTable.TrancheName, held);
        Assert.True(pm.Instance.Owners.ReadHeldCount(2) >= 2);
        pm.SimulateFullRestart();
    }
}
