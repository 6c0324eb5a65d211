using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Registry;
using Postmaster.Testing;
using Postmaster.Tests.Dsm;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Registry;

/// <summary>The DSM registry between real processes: TestChild "registry" children attached to the test's instance
/// (PostgreSQL's test_dsm_registry, plus the races and deaths PostgreSQL does not test).</summary>
[Collection(DsmProcessCollection.Name)]
public sealed class DsmRegistryProcessTests
{
    [Theory]
    [InlineData(DsmKind.Posix)]
    [InlineData(DsmKind.SysV)]
    [InlineData(DsmKind.Mmap)]
    public void A_value_set_by_one_backend_is_read_back_by_a_new_backend(DsmKind kind)
    {
        using var pm = new DsmTestInstance("reg-tdr", (DsmType)kind);
        int setter;
        using (var child = pm.StartChild(2, "registry"))
        {
            setter = child.Pid;
            child.WriteLine("get test_dsm_registry 4096");
            Assert.StartsWith("got test_dsm_registry found=False", child.WaitForLine("got"));
            child.WriteLine("write test_dsm_registry 1236");
            child.WaitForLine("wrote");
            child.WriteLine("exit");
            Assert.Equal(0, child.WaitForExit());
        }
        var entry = Assert.Single(pm.Instance.DsmRegistryTable.List());
        Assert.Equal((DsmRegistryEntryState.Ready, setter, 1), (entry.State, entry.InitialisedByPid, entry.Attempts));
        Assert.Equal(2, pm.Row(entry.Handle)!.ReferenceCount);     // its creator is gone; the pin keeps it

        using var reader = pm.StartChild(2, "registry");
        reader.WriteLine("get test_dsm_registry 4096");
        Assert.Equal($"got test_dsm_registry found=True handle={entry.Handle} size=4096", reader.WaitForLine("got"));
        reader.WriteLine("read test_dsm_registry");
        Assert.Equal($"value test_dsm_registry 1236 0", reader.WaitForLine("value"));
        reader.WriteLine("exit");
        Assert.Equal(0, reader.WaitForExit());
        Assert.DoesNotContain("init ", reader.Output);
    }

    [Fact]
    public void Six_processes_racing_for_one_name_initialise_it_exactly_once()
    {
        const int Children = 6;
        using var pm = new DsmTestInstance("reg-race", DsmType.Posix);
        var children = new List<ChildProcess>();
        try
        {
            for (int i = 0; i < Children; i++)
                children.Add(pm.StartChild(i + 1, "registry"));
            foreach (var c in children) // the initialiser sleeps 200 ms, so the others arrive while it runs
                c.WriteLine("get reg-race 65536 slow 77 200");
            var got = children.Select(c => c.WaitForLine("got")).ToList();

            Assert.Single(got, g => g.Contains("found=False"));
            Assert.Equal(Children - 1, got.Count(g => g.Contains("found=True")));
            Assert.Single(got.Select(g => g.Split(' ')[3]).Distinct());        // one handle
            var initialisers = children.Where(c => c.Output.Contains("init reg-race")).ToList();
            var initialiser = Assert.Single(initialisers);
            foreach (var c in children)
            {
                c.WriteLine("read reg-race");
                Assert.Equal($"value reg-race 77 {initialiser.Pid}", c.WaitForLine("value"));
            }
            var entry = Assert.Single(pm.Instance.DsmRegistryTable.List());
            Assert.Equal((DsmRegistryEntryState.Ready, initialiser.Pid, 1, 0),
                (entry.State, entry.InitialisedByPid, entry.Attempts, entry.Waiters));
            Assert.Equal(2 + Children, pm.Row(entry.Handle)!.ReferenceCount); // exists + pin + every process's mapping
            foreach (var c in children)
                c.WriteLine("exit");
            Assert.All(children, c => Assert.Equal(0, c.WaitForExit()));
        }
        finally
        {
            children.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public void When_an_initialiser_throws_a_waiting_process_initialises_instead()
    {
        using var pm = new DsmTestInstance("reg-throw-proc", DsmType.Posix);
        using var first = pm.StartChild(1, "registry");
        using var second = pm.StartChild(2, "registry");
        first.WriteLine("get reg-retry 4096 block-throw");
        first.WaitForLine("initialising reg-retry");
        second.WriteLine("get reg-retry 4096 value 5");
        Wait.Until(() => Entry(pm, "reg-retry").Waiters == 1, "the second process to wait for the first");

        first.WriteLine("continue");

        Assert.Equal("error initialiser failed on purpose", first.WaitForLine("error"));
        Assert.StartsWith("got reg-retry found=False", second.WaitForLine("got"));
        Assert.Contains($"init reg-retry {second.Pid}", second.Output);
        var entry = Entry(pm, "reg-retry");
        Assert.Equal((DsmRegistryEntryState.Ready, second.Pid, 2), (entry.State, entry.InitialisedByPid, entry.Attempts));
        first.WriteLine("get reg-retry 4096");                     // the process whose initialiser failed now finds it
        Assert.StartsWith("got reg-retry found=True", first.WaitForLine("got"));
        first.WriteLine("read reg-retry");
        Assert.Equal($"value reg-retry 5 {second.Pid}", first.WaitForLine("value"));
        Assert.Single(pm.Control.Inspect());                       // the failed attempt's segment is gone
    }

    [Fact]
    public void An_initialiser_killed_mid_init_is_taken_over_by_a_waiting_process()
    {
        using var pm = new DsmTestInstance("reg-kill", DsmType.Posix);
        using var second = pm.StartChild(2, "registry");
        DsmHandle abandoned;
        using (var first = pm.StartChild(1, "registry"))
        {
            first.WriteLine("get reg-kill 4096 block 1");
            first.WaitForLine("initialising reg-kill");
            var busy = Entry(pm, "reg-kill");
            Assert.Equal((DsmRegistryEntryState.Initialising, first.Pid), (busy.State, busy.OwnerPid));
            abandoned = Assert.Single(pm.Control.Inspect()).Handle;   // created, not pinned
            second.WriteLine("get reg-kill 4096 value 2");
            Wait.Until(() => Entry(pm, "reg-kill").Waiters == 1, "the second process to wait for the first");
            first.Kill(Signals.SIGKILL);
            first.WaitForExit();
        }

        Assert.StartsWith("got reg-kill found=False", second.WaitForLine("got"));
        var entry = Entry(pm, "reg-kill");
        Assert.Equal((DsmRegistryEntryState.Ready, second.Pid, 2), (entry.State, entry.InitialisedByPid, entry.Attempts));
        Assert.Equal(2, pm.Row(abandoned)!.ReferenceCount);         // the dead process's mapping, until reconciled
        Assert.Equal(DsmReconcileStatus.Done, pm.Control.ReconcileSlot(1).Status);
        Assert.Null(pm.Row(abandoned));
        Assert.Equal([entry.Handle], pm.Control.Inspect().Select(r => r.Handle));
        second.WriteLine("read reg-kill");
        Assert.Equal($"value reg-kill 2 {second.Pid}", second.WaitForLine("value"));
    }

    [Fact]
    public void An_initialiser_killed_after_pinning_leaves_a_segment_the_next_caller_unpins()
    {
        using var pm = new DsmTestInstance("reg-kill-pinned", DsmType.Posix);
        DsmHandle abandoned;
        using (var first = pm.StartChild(1, "registry"))
        {
            first.WriteLine("get reg-pinned 4096 hang-pinned 1");
            abandoned = DsmHandle.Parse(first.WaitForLine("pinned reg-pinned").Split(' ')[2]);
            Assert.True(pm.Row(abandoned)!.Pinned);
            first.Kill(Signals.SIGKILL);
            first.WaitForExit();
        }
        Assert.Equal(DsmReconcileStatus.Done, pm.Control.ReconcileSlot(1).Status);
        Assert.Equal(2, pm.Row(abandoned)!.ReferenceCount);        // reconcile leaves pins: only the entry knows it

        using var second = pm.StartChild(2, "registry");
        second.WriteLine("get reg-pinned 4096 value 3");             // finds the owner dead at once: no waiting

        Assert.StartsWith("got reg-pinned found=False", second.WaitForLine("got"));
        Assert.Null(pm.Row(abandoned));                             // unpinned by the new initialiser: destroyed
        var entry = Entry(pm, "reg-pinned");
        Assert.Equal((DsmRegistryEntryState.Ready, 2), (entry.State, entry.Attempts));
        Assert.Equal([entry.Handle], pm.Control.Inspect().Select(r => r.Handle));
    }

    [Fact]
    public void A_name_survives_a_killed_backend_and_its_reconcile()
    {
        using var pm = new DsmTestInstance("reg-survive", DsmType.SysV);
        using (var first = pm.StartChild(3, "registry"))
        {
            first.WriteLine("get reg-survive 8192 value 42");
            first.WaitForLine("got");
            first.Kill(Signals.SIGKILL);
            first.WaitForExit();
        }
        Assert.Equal(DsmReconcileStatus.Done, pm.Control.ReconcileSlot(3).Status);
        pm.Instance.Owners.ResetSlot(3);

        using var next = pm.StartChild(3, "registry");
        next.WriteLine("get reg-survive 8192 value 1");
        Assert.StartsWith("got reg-survive found=True", next.WaitForLine("got"));
        next.WriteLine("read reg-survive");
        Assert.StartsWith("value reg-survive 42 ", next.WaitForLine("value"));
    }

    [Fact]
    public void Release_in_one_process_leaves_other_mappings_valid_until_they_detach()
    {
        using var pm = new DsmTestInstance("reg-release-proc", DsmType.Posix);
        using var owner = pm.StartChild(1, "registry");
        using var user = pm.StartChild(2, "registry");
        owner.WriteLine("get reg-shared 4096 value 8");
        var handle = DsmHandle.Parse(owner.WaitForLine("got").Split("handle=")[1].Split(' ')[0]);
        user.WriteLine("get reg-shared 4096");
        Assert.StartsWith("got reg-shared found=True", user.WaitForLine("got"));

        owner.WriteLine("release reg-shared");

        Assert.Equal("released reg-shared True", owner.WaitForLine("released"));
        Assert.Empty(pm.Instance.DsmRegistryTable.List());
        user.WriteLine("read reg-shared");
        Assert.Equal($"value reg-shared 8 {owner.Pid}", user.WaitForLine("value"));
        owner.WriteLine("get reg-shared 4096 value 9");              // a new segment under the old name
        Assert.StartsWith("got reg-shared found=False", owner.WaitForLine("got"));
        user.WriteLine("exit");
        Assert.Equal(0, user.WaitForExit());
        Assert.Null(pm.Row(handle));                                // the last mapping of the old one is gone
    }

    private static DsmRegistryEntryInfo Entry(DsmTestInstance pm, string name) =>
        pm.Instance.DsmRegistryTable.List().Single(e => e.Name == name);
}
