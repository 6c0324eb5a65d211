using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Locks;

/// <summary>Multi-process lock tests: one at a time (the machine has two cores, and each test starts children).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LockProcessCollection
{
    public const string Name = "Locks: multi-process";
}

/// <summary>Locks shared between real processes (TestChild lock scenarios attached to this test's segment).</summary>
[Collection(LockProcessCollection.Name)]
public sealed class LWLockProcessTests : IDisposable
{
    private readonly LockTestSegment _seg = new("lwlock-proc");
    private readonly List<ChildProcess> _children = new();

    public void Dispose()
    {
        foreach (var child in _children)
            child.Dispose(); // kills any child still running
        _seg.Dispose();
    }

    [Fact]
    public void Processes_incrementing_a_counter_under_the_exclusive_lock_reach_exactly_N_times_M()
    {
        const int Processes = 3;
        const int Increments = 20_000;
        var children = Enumerable.Range(0, Processes).Select(slot => Start("lock-counter", slot,
            $"lock={_seg.LockOffset(0)}", $"counter={_seg.DataOffset}", $"n={Increments}")).ToList();
        children.ForEach(c => c.WaitForLine("ready"));
        children.ForEach(c => c.WriteLine("go"));
        foreach (var child in children)
        {
            child.WaitForLine("done");
            Assert.Equal(0, child.WaitForExit());
        }
        Assert.Equal(Processes * Increments, _seg.Data(0));
        Assert.True(_seg.Lock(0).ReadStatus().IsFree);
        Assert.All(Enumerable.Range(0, Processes), slot => Assert.Empty(_seg.Inspector().HeldBy(slot)));
    }

    [Fact]
    public void Readers_in_other_processes_never_see_a_half_written_record()
    {
        const int Fields = 8;
        string[] Common(string role, int n) =>
            [$"lock={_seg.LockOffset(1)}", $"record={_seg.DataOffset}", $"fields={Fields}", $"role={role}", $"n={n}"];
        var writer = Start("lock-record", 0, Common("writer", 5_000));
        var readers = new[] { Start("lock-record", 1, Common("reader", 20_000)), Start("lock-record", 2, Common("reader", 20_000)) };
        var all = readers.Append(writer).ToList();
        all.ForEach(c => c.WaitForLine("ready"));
        all.ForEach(c => c.WriteLine("go"));

        Assert.Equal("writes=5000", writer.WaitForLine("writes="));
        foreach (var reader in readers)
            Assert.Equal("violations=0 reads=20000", reader.WaitForLine("violations="));
        Assert.All(all, c => Assert.Equal(0, c.WaitForExit()));
        Assert.All(Enumerable.Range(0, Fields), f => Assert.Equal(5_000, _seg.Data(f)));
    }

    [Fact]
    public void A_process_killed_with_SIGKILL_while_holding_locks_shows_up_as_their_dead_owner()
    {
        const int Slot = 3;
        var child = Start("lock-hold", Slot, $"locks={_seg.LockOffset(0)},{_seg.LockOffset(1)}", "modes=X,S");
        child.WaitForLine("holding 2");
        var inspector = _seg.Inspector();
        Assert.False(inspector.IsOwnerDead(_seg.Lock(0)));

        child.Kill(Signals.SIGKILL);
        child.WaitForExit();

        var report = inspector.Inspect(_seg.Lock(0));
        Assert.True(report.Status.IsExclusive);
        Assert.Equal(child.Pid, report.Status.ExclusiveOwnerPid);
        Assert.Equal(Slot, report.Status.ExclusiveOwnerSlot);
        var holding = Assert.Single(report.Holdings);
        Assert.Equal((Slot, child.Pid, false, LWLockMode.Exclusive, HeldLockPhase.Held),
            (holding.Slot, holding.Pid, holding.IsAlive, holding.Mode, holding.Phase));
        Assert.Equal(LockTestSegment.TestTranche, holding.TrancheName);
        Assert.True(report.IsOwnerDead);
        Assert.True(inspector.IsOwnerDead(_seg.Lock(1)));
        Assert.Equal(1, _seg.Lock(1).ReadStatus().SharedHolders);
        Assert.Equal([_seg.Lock(0).Id, _seg.Lock(1).Id], inspector.HeldBy(Slot).Select(h => h.Lock));
        Assert.True(inspector.IsSlotOwnerDead(Slot));

        // The lock stays held for ever (as in PostgreSQL): the supervisor must not wait for it.
        using var owner = _seg.Owner(0);
        Assert.False(owner.TryAcquire(_seg.Lock(0), LWLockMode.Shared));
        Assert.False(owner.Acquire(_seg.Lock(0), LWLockMode.Exclusive, TimeSpan.FromMilliseconds(50)));
        Assert.Throws<ShmemException>(() => _seg.Owner(Slot)); // the slot needs reconciling first
        _seg.Owners.ResetSlot(Slot);
        Assert.False(inspector.IsSlotOwnerDead(Slot));
    }

    [Fact]
    public void A_process_killed_while_waiting_for_a_lock_is_still_listed_as_acquiring_it()
    {
        const int Slot = 4;
        using var owner = _seg.Owner(0);
        owner.Acquire(_seg.Lock(3), LWLockMode.Exclusive);
        var child = Start("lock-hold", Slot, $"locks={_seg.LockOffset(3)}", "modes=X");
        var inspector = _seg.Inspector();
        Wait.Until(() => _seg.Lock(3).ReadStatus().ExclusiveWaiters == 1, "the child to wait for the lock");

        child.Kill(Signals.SIGKILL);
        child.WaitForExit();

        var entry = Assert.Single(inspector.HeldBy(Slot));
        Assert.Equal((HeldLockPhase.Acquiring, LWLockMode.Exclusive, false), (entry.Phase, entry.Mode, entry.IsAlive));
        Assert.True(inspector.IsOwnerDead(_seg.Lock(3)));
        // Why "acquiring" must count as holding: the dead waiter is still counted in the word, so readers stay blocked.
        owner.Release(_seg.Lock(3));
        Assert.Equal(1, _seg.Lock(3).ReadStatus().ExclusiveWaiters);
        Assert.False(owner.TryAcquire(_seg.Lock(3), LWLockMode.Shared));
        _seg.Owners.ResetSlot(Slot);
    }

    [Fact]
    public void A_waiter_with_a_timeout_in_another_process_returns_false_instead_of_hanging()
    {
        using var owner = _seg.Owner(0);
        owner.Acquire(_seg.Lock(2), LWLockMode.Exclusive);
        var child = Start("lock-timeout", 1, $"lock={_seg.LockOffset(2)}", "timeout-ms=300");

        var line = child.WaitForLine("acquired=");
        Assert.Equal(0, child.WaitForExit());
        var fields = line.Split(' ').Select(f => f.Split('=')).ToDictionary(kv => kv[0], kv => kv[1]);
        Assert.Equal("False", fields["acquired"]);
        Assert.Equal("0", fields["held"]);
        Assert.InRange(int.Parse(fields["elapsed-ms"]), 270, (int)ClusterOptions.DefaultTimeout.TotalMilliseconds);
        Assert.Equal(0, _seg.Lock(2).ReadStatus().ExclusiveWaiters);
        owner.Release(_seg.Lock(2));
        Assert.Equal(0, _seg.Owners.RecordedPid(1));
    }

    [Fact]
    public void Exiting_normally_releases_every_lock_and_another_process_can_take_them()
    {
        const int Slot = 2;
        var child = Start("lock-hold", Slot,
            $"locks={_seg.LockOffset(0)},{_seg.LockOffset(1)},{_seg.LockOffset(2)}", "modes=X,S,X");
        child.WaitForLine("holding 3");
        Assert.Equal(3, _seg.Inspector().HeldBy(Slot).Count);

        child.WriteLine("exit");
        Assert.Equal(0, child.WaitForExit());

        Assert.Empty(_seg.Inspector().HeldBy(Slot));
        Assert.Equal(0, _seg.Owners.RecordedPid(Slot));
        using var owner = _seg.Owner(0);
        for (int i = 0; i < 3; i++)
            Assert.True(owner.TryAcquire(_seg.Lock(i), LWLockMode.Exclusive), $"lock {i} was not released");
        owner.ReleaseAll();
    }

    [Fact]
    public void A_condition_variable_wakes_a_waiter_in_another_process()
    {
        long cvOffset = _seg.DataOffset + 256;
        var child = Start("cv-wait", 1, $"lock={_seg.LockOffset(0)}", $"cv={cvOffset}", $"value={_seg.DataOffset}",
            "target=1", $"timeout-ms={(long)ClusterOptions.DefaultTimeout.TotalMilliseconds}");
        child.WaitForLine("waiting");

        using var owner = _seg.Owner(0);
        // Succeeds only once the child has released the lock inside Wait.
        Assert.True(owner.Acquire(_seg.Lock(0), LWLockMode.Exclusive, ClusterOptions.DefaultTimeout));
        _seg.Data(0) = 1;
        owner.Release(_seg.Lock(0));
        _seg.Region.Ref<SharedConditionVariable>(cvOffset).Broadcast();

        Assert.Equal("woken=True value=1", child.WaitForLine("woken="));
        Assert.Equal(0, child.WaitForExit());
    }

    private ChildProcess Start(string scenario, int slot, params string[] extra)
    {
        var child = ChildProcess.TestChild(scenario, _seg.ChildArgs(slot, extra));
        _children.Add(child);
        return child;
    }
}
