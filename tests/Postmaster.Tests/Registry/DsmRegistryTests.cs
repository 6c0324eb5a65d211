using Postmaster.Shmem;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Registry;
using Postmaster.Testing;
using Postmaster.Tests.Dsm;
using Postmaster.Tests.Locks;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Registry;

/// <summary>Single-process semantics of <see cref="DsmRegistry"/>: registries on two slots of one process stand for two
/// backends. Every instance checks on Dispose that no segment of it is left.</summary>
public sealed class DsmRegistryTests
{
    [Theory]
    [MemberData(nameof(DsmTestInstance.Kinds), MemberType = typeof(DsmTestInstance))]
    public void The_first_caller_initialises_once_and_every_later_caller_finds_the_same_segment(DsmKind kind, long mainRegion)
    {
        using var pm = new DsmTestInstance("reg-basic", (DsmType)kind, mainRegion: mainRegion);
        var a = pm.Registry(0);
        var b = pm.Registry(1);
        int inits = 0;
        void Init(ShmemRegion r)
        {
            inits++;
            Assert.Equal(-1, r.Span(0, 4096).IndexOfAnyExcept((byte)0)); // zeroed
            r.Ref<long>(0) = 1236;
        }

        var first = a.GetNamedSegment("test_dsm_registry", 4096, Init, out bool found1);
        var second = b.GetNamedSegment("test_dsm_registry", 4096, Init, out bool found2);
        var again = a.GetNamedSegment("test_dsm_registry", 4096, Init, out bool found3);

        Assert.False(found1);
        Assert.True(found2);
        Assert.True(found3);
        Assert.Equal(1, inits);
        Assert.Equal(4096, first.Size);
        Assert.Equal(first.Handle, second.Handle);
        Assert.Same(first.Segment, again.Segment);               // the process's existing mapping
        Assert.Equal(1236, second.Region.Ref<long>(0));
        Assert.True(second.Segment.IsMappingPinned);
        var row = pm.Row(first.Handle)!;
        Assert.True(row.Pinned);
        Assert.Equal(4, row.ReferenceCount);                     // exists + pin + two mappings
        var entry = Assert.Single(a.List());
        Assert.Equal(new DsmRegistryEntryInfo("test_dsm_registry", DsmRegistryEntryState.Ready, first.Handle, 4096, 0,
            Environment.ProcessId, 1, 0, entry.Changed, DsmRegistryEntryType.Segment, 4096), entry);
    }

    [Fact]
    public void Names_and_sizes_are_checked_with_PostgreSQL_messages()
    {
        using var pm = new DsmTestInstance("reg-errors", DsmType.Posix);
        var a = pm.Registry(0);
        ShmemException Fails(string name, long size) =>
            Assert.Throws<ShmemException>(() => a.GetNamedSegment(name, size, null, out _));

        Assert.Equal("DSM segment name cannot be empty", Fails("", 64).Message);
        var tooLong = Fails(new string('x', 64), 64);
        Assert.Equal("DSM segment name too long", tooLong.Message);
        Assert.Contains("the limit is 63 bytes", tooLong.Detail);
        Assert.Equal("DSM segment name too long", Fails(new string('é', 32), 64).Message); // 64 bytes in UTF-8
        Assert.Equal("DSM segment name cannot contain a NUL character", Fails("a\0b", 64).Message);
        Assert.Equal("DSM segment size must be nonzero", Fails("reg-size", 0).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => a.GetNamedSegment("reg-size", -1, null, out _));
        Assert.Equal("DSM segment name too long", Assert.Throws<ShmemException>(() => a.Release(new string('x', 64))).Message);
        Assert.Empty(a.List());

        string longest = new string('y', 63);
        a.GetNamedSegment(longest, 100, null, out bool found);
        Assert.False(found);
        var mismatch = Fails(longest, 101);
        Assert.Equal("requested DSM segment size does not match size of existing segment", mismatch.Message);
        Assert.Equal($"DSM segment \"{longest}\" has 100 bytes; 101 were requested.", mismatch.Detail);
        Assert.Equal(longest, Assert.Single(a.List()).Name);
    }

    [Fact]
    public void An_initialiser_that_throws_registers_nothing_and_the_next_caller_initialises()
    {
        using var pm = new DsmTestInstance("reg-throw", DsmType.Posix);
        var a = pm.Registry(0);
        var b = pm.Registry(1);
        var boom = new InvalidOperationException("boom");

        var thrown = Assert.Throws<InvalidOperationException>(() => a.GetNamedSegment("reg-throw", 8192, _ => throw boom, out _));

        Assert.Same(boom, thrown);
        var failed = Assert.Single(a.List());
        Assert.Equal(DsmRegistryEntryState.Failed, failed.State);
        Assert.Equal(Environment.ProcessId, failed.InitialisedByPid);
        Assert.False(failed.Handle.IsValid);
        Assert.Empty(pm.Control.Inspect());                      // the half-made segment is destroyed
        var seg = b.GetNamedSegment("reg-throw", 8192, r => r.Ref<int>(0) = 7, out bool found);
        Assert.False(found);
        Assert.Equal(7, a.GetNamedSegment("reg-throw", 8192, _ => throw boom, out bool foundByA).Region.Ref<int>(0));
        Assert.True(foundByA);
        var ready = Assert.Single(a.List());
        Assert.Equal((DsmRegistryEntryState.Ready, seg.Handle, 2), (ready.State, ready.Handle, ready.Attempts));
    }

    [Fact]
    public void Release_drops_the_name_and_the_last_detach_destroys_the_segment()
    {
        using var pm = new DsmTestInstance("reg-release", DsmType.Posix);
        var a = pm.Registry(0);
        var b = pm.Registry(1);
        var created = a.GetNamedSegment("reg-release", 4096, r => r.Ref<long>(0) = 11, out _);
        var attached = b.GetNamedSegment("reg-release", 4096, null, out _);
        var h = created.Handle;

        Assert.True(a.Release("reg-release"));

        Assert.Empty(a.List());
        Assert.False(created.Segment.IsAttached);                // the releasing process's own mapping goes
        var row = pm.Row(h)!;
        Assert.False(row.Pinned);
        Assert.Equal(2, row.ReferenceCount);                     // b still has it mapped
        Assert.Equal(11, attached.Region.Ref<long>(0));
        Assert.False(a.Release("reg-release"));
        b.Session.Detach(attached.Segment);
        Assert.Null(pm.Row(h));
        var recreated = b.GetNamedSegment("reg-release", 4096, r => r.Ref<long>(0) = 12, out bool found);
        Assert.False(found);
        Assert.NotEqual(h, recreated.Handle);
        Assert.Equal(12, recreated.Region.Ref<long>(0));
    }

    [Fact]
    public void An_initialiser_may_register_other_names_but_not_its_own()
    {
        using var pm = new DsmTestInstance("reg-reentry", DsmType.Posix);
        var a = pm.Registry(0);
        ShmemException? own = null;
        bool innerFound = true;

        a.GetNamedSegment("reg-outer", 4096, r =>
        {
            a.GetNamedSegment("reg-inner", 4096, null, out innerFound);  // no registry lock is held during init
            own = Assert.Throws<ShmemException>(() => a.GetNamedSegment("reg-outer", 4096, null, out _));
        }, out bool found);

        Assert.False(found);
        Assert.False(innerFound);
        Assert.Equal("DSM segment \"reg-outer\" is being initialised by this process", own!.Message);
        Assert.All(a.List(), e => Assert.Equal(DsmRegistryEntryState.Ready, e.State));
        Assert.Equal(["reg-inner", "reg-outer"], a.List().Select(e => e.Name).Order());
    }

    [Fact]
    public void The_table_holds_its_capacity_and_a_released_name_makes_room()
    {
        using var pm = new DsmTestInstance("reg-full", DsmType.Posix, registryCapacity: 2);
        var a = pm.Registry(0);
        a.GetNamedSegment("reg-1", 64, null, out _);
        a.GetNamedSegment("reg-2", 64, null, out _);

        var full = Assert.Throws<ShmemException>(() => a.GetNamedSegment("reg-3", 64, null, out _));

        Assert.Equal("too many named DSM segments", full.Message);
        Assert.Contains("at most 2 names", full.Detail);
        Assert.True(a.Release("reg-1"));
        a.GetNamedSegment("reg-3", 64, null, out bool found);
        Assert.False(found);
        Assert.Equal(2, pm.Instance.DsmRegistryTable.Count);
        Assert.Equal(["reg-2", "reg-3"], a.List().Select(e => e.Name).Order());
    }

    [Fact]
    public void A_full_restart_empties_the_registry_and_destroys_its_segments()
    {
        using var pm = new DsmTestInstance("reg-restart", DsmType.Posix);
        var a = pm.Registry(0);
        a.GetNamedSegment("reg-restart", 4096, r => r.Ref<long>(0) = 5, out _);
        Assert.Equal(2, pm.Tagged().Count);                      // control + the named segment

        pm.SimulateFullRestart();

        Assert.Single(pm.Tagged());                              // the new control segment only
        var fresh = pm.Registry(0);
        Assert.Empty(fresh.List());
        var seg = fresh.GetNamedSegment("reg-restart", 4096, null, out bool found);
        Assert.False(found);
        Assert.Equal(0, seg.Region.Ref<long>(0));
    }

    /// <summary>Release builds only (<see cref="ReleaseOnlyFactAttribute"/>): the fixture disposes owners made on
    /// other threads.</summary>
    [ReleaseOnlyFact]
    public void A_caller_waits_while_another_initialises_then_finds_the_initialised_segment()
    {
        using var pm = new DsmTestInstance("reg-wait", DsmType.Posix);
        using var entered = new ManualResetEventSlim();
        using var proceed = new ManualResetEventSlim();
        using var waiting = new ManualResetEventSlim();
        int inits = 0;
        var initialiser = TestThread.Start(() =>
        {
            pm.Registry(0).GetNamedSegment("reg-wait", 4096, r =>
            {
                Interlocked.Increment(ref inits);
                entered.Set();
                Assert.True(proceed.Wait(ClusterOptions.DefaultTimeout));
                r.Ref<long>(0) = 99;
            }, out bool found);
            return found;
        });
        Assert.True(entered.Wait(ClusterOptions.DefaultTimeout));
        var busy = Assert.Single(pm.Instance.DsmRegistryTable.List());
        Assert.Equal((DsmRegistryEntryState.Initialising, Environment.ProcessId, 1), (busy.State, busy.OwnerPid, busy.Attempts));

        var waiter = TestThread.Start(() =>
        {
            var b = pm.Registry(1);
            b.BeforeSleep = waiting.Set;
            var seg = b.GetNamedSegment("reg-wait", 4096, _ => Interlocked.Increment(ref inits), out bool found);
            return (found, seg.Region.Ref<long>(0));
        });
        Assert.True(waiting.Wait(ClusterOptions.DefaultTimeout));             // asleep on the entry's condition variable
        Assert.Equal(1, pm.Instance.DsmRegistryTable.List().Single().Waiters);
        proceed.Set();

        Assert.False(initialiser.Join());
        Assert.Equal((true, 99L), waiter.Join());
        Assert.Equal(1, inits);
        Assert.Equal(0, pm.Instance.DsmRegistryTable.List().Single().Waiters);
    }

    [ReleaseOnlyFact]
    public void A_wait_for_another_initialiser_can_be_cancelled()
    {
        using var pm = new DsmTestInstance("reg-cancel", DsmType.Posix);
        using var cancel = new CancellationTokenSource();
        var (initialiser, proceed) = ParkInitialiser(pm, "reg-cancel");
        using var proceedEvent = proceed;
        try
        {
            var b = pm.Registry(1);
            b.BeforeSleep = cancel.Cancel;
            Assert.Throws<OperationCanceledException>(() => b.GetNamedSegment("reg-cancel", 4096, null, out _, cancel.Token));
            Assert.Equal(0, b.List().Single().Waiters);
        }
        finally
        {
            proceed.Set();
            initialiser.Join();
        }
        Assert.Equal(DsmRegistryEntryState.Ready, pm.Instance.DsmRegistryTable.List().Single().State);
    }

    [ReleaseOnlyFact]
    public void A_slow_initialiser_does_not_delay_other_names()
    {
        using var pm = new DsmTestInstance("reg-unrelated", DsmType.Posix);
        var (slow, proceed) = ParkInitialiser(pm, "reg-slow");
        using var proceedEvent = proceed;
        try
        {
            var b = pm.Registry(1);
            b.GetNamedSegment("reg-other", 4096, null, out bool found); // PostgreSQL: may block behind a partition lock
            Assert.False(found);
            Assert.Equal(DsmRegistryEntryState.Initialising, b.List().Single(e => e.Name == "reg-slow").State);
        }
        finally
        {
            proceed.Set();
            slow.Join();
        }
    }

    [Fact]
    public void The_table_in_the_main_segment_is_validated_on_attach()
    {
        using var pm = new DsmTestInstance("reg-validate", DsmType.Posix);
        Assert.True(pm.Main.Index.TryFind("DSM registry", out var region));
        Assert.True(DsmRegistryTable.IsSane(region));
        ref uint magic = ref region.Ref<uint>(0);
        uint saved = magic;
        magic = 0xDEAD_BEEF;
        try
        {
            var e = Assert.Throws<ShmemCorruptException>(() => DsmRegistryTable.Attach(region));
            Assert.Equal("DSM registry is corrupt", e.Message);
            Assert.Contains("Magic number 0xDEADBEEF", e.Detail);
        }
        finally
        {
            magic = saved;
        }
        Assert.Equal(DsmRegistryTable.RequiredSize(DsmRegistryTable.DefaultCapacity), region.Size);
        Assert.Equal(DsmRegistryTable.DefaultCapacity, DsmRegistryTable.Attach(region).Capacity);
    }

    [Fact]
    public void Registry_layout_is_pinned()
    {
        Assert.Equal(64, System.Runtime.CompilerServices.Unsafe.SizeOf<DsmRegistryHeader>());
        Assert.Equal(192, System.Runtime.CompilerServices.Unsafe.SizeOf<DsmRegistryEntry>());
        Assert.Equal(64, (int)System.Runtime.InteropServices.Marshal.OffsetOf<DsmRegistryEntry>(nameof(DsmRegistryEntry.NameHash)));
        Assert.Equal(112, (int)System.Runtime.InteropServices.Marshal.OffsetOf<DsmRegistryEntry>(nameof(DsmRegistryEntry.Changed)));
        Assert.Equal(63, DsmRegistryTable.MaxNameBytes);
    }

    /// <summary>Starts slot 0's initialisation of <paramref name="name"/> on a thread and returns once it is inside
    /// the initialiser, parked there until the returned event is set (the caller sets it, joins the thread and
    /// disposes the event).</summary>
    private static (TestThread<NamedSegment> Thread, ManualResetEventSlim Proceed) ParkInitialiser(DsmTestInstance pm, string name)
    {
        using var entered = new ManualResetEventSlim();
        var proceed = new ManualResetEventSlim();
        var thread = TestThread.Start(() => pm.Registry(0).GetNamedSegment(name, 4096, _ =>
        {
            entered.Set();
            Assert.True(proceed.Wait(ClusterOptions.DefaultTimeout));
        }, out _));
        Assert.True(entered.Wait(ClusterOptions.DefaultTimeout));
        return (thread, proceed);
    }
}
