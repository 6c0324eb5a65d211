using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Xunit;

namespace Postmaster.Tests.Dsm;

/// <summary>Single-process semantics of <see cref="DsmSession"/> for every implementation (two sessions on two
/// slots of one process stand for two backends).</summary>
public sealed class DsmSessionTests
{
    public static TheoryData<DsmKind> Types => new() { DsmKind.Posix, DsmKind.SysV, DsmKind.Mmap };

    [Theory]
    [MemberData(nameof(Types))]
    public void A_created_segment_is_zeroed_and_another_session_attaches_it_by_handle(DsmKind kind)
    {
        using var pm = new DsmTestInstance("create-attach", (DsmType)kind);
        var a = pm.Session(0);
        var b = pm.Session(1);
        using var created = a.Create(100_000)!;
        Assert.Equal(100_000, created.Size);
        Assert.Equal((DsmImplementation)kind, created.Implementation);
        Assert.False(created.Handle.IsMainRegion);
        Assert.Equal(-1, created.Region.Span(0, 100_000).IndexOfAnyExcept((byte)0));
        Assert.Equal(0, created.Address % 64);
        created.Region.Span(0, 100_000).Fill(0x5A);

        using var attached = b.Attach(created.Handle)!;
        Assert.Equal(created.Handle, attached.Handle);
        Assert.Equal(100_000, attached.Size);
        Assert.Equal(-1, attached.Region.Span(0, 100_000).IndexOfAnyExcept((byte)0x5A));
        attached.Region.Ref<long>(8) = 42;
        Assert.Equal(42, created.Region.Ref<long>(8));
        Assert.Equal((DsmImplementation)kind, Assert.Single(SegmentObjects(pm)).Implementation);
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void The_last_detach_destroys_the_segment_and_a_later_attach_returns_null(DsmKind kind)
    {
        using var pm = new DsmTestInstance("last-detach", (DsmType)kind);
        var a = pm.Session(0);
        var b = pm.Session(1);
        var seg = a.Create(8192)!;
        var handle = seg.Handle;
        var other = b.Attach(handle)!;
        a.Detach(seg);
        Assert.False(seg.IsAttached);
        Assert.Equal(2, pm.Row(handle)!.ReferenceCount); // b's reference only
        b.Detach(other);
        Assert.Null(pm.Row(handle));
        Assert.Null(a.Attach(handle));
        Assert.Null(b.Attach(handle));
        Assert.Empty(SegmentObjects(pm));
        a.Detach(seg); // idempotent
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Reference_counts_follow_PostgreSQL_arithmetic(DsmKind kind)
    {
        using var pm = new DsmTestInstance("refcount", (DsmType)kind);
        var a = pm.Session(0);
        var b = pm.Session(1);
        var seg = a.Create(4096)!;
        var h = seg.Handle;
        Assert.Equal(2, pm.Row(h)!.ReferenceCount);           // exists + creator
        var other = b.Attach(h)!;
        Assert.Equal(3, pm.Row(h)!.ReferenceCount);
        a.Pin(seg);
        var row = pm.Row(h)!;
        Assert.Equal(4, row.ReferenceCount);
        Assert.True(row.Pinned);
        Assert.Equal(DsmItemState.Live, row.State);
        Assert.Equal([new DsmAttachment(0, Environment.ProcessId, true, true), new DsmAttachment(1, Environment.ProcessId, true, false)],
            row.AttachedBy.OrderBy(x => x.Slot));
        a.Detach(seg);
        Assert.Equal(3, pm.Row(h)!.ReferenceCount);
        b.Detach(other);
        Assert.Equal(2, pm.Row(h)!.ReferenceCount);            // the pin alone keeps it
        Assert.Equal([new DsmAttachment(0, Environment.ProcessId, false, true)], pm.Row(h)!.AttachedBy);
        using (var again = b.Attach(h)!)
            Assert.Equal(3, pm.Row(h)!.ReferenceCount);
        Assert.Equal(2, pm.Row(h)!.ReferenceCount);
        b.Unpin(h);                                            // any process may unpin
        Assert.Null(pm.Row(h));
        Assert.Null(b.Attach(h));
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Attaching_the_same_segment_twice_in_one_process_is_an_error(DsmKind kind)
    {
        using var pm = new DsmTestInstance("double-attach", (DsmType)kind);
        var a = pm.Session(0);
        var b = pm.Session(1);
        using var seg = a.Create(4096)!;
        var e = Assert.Throws<ShmemException>(() => a.Attach(seg.Handle));
        Assert.Equal("can't attach the same segment more than once", e.Message);
        using var other = b.Attach(seg.Handle)!;
        Assert.Equal("can't attach the same segment more than once", Assert.Throws<ShmemException>(() => b.Attach(seg.Handle)).Message);
        Assert.Same(other, b.FindMapping(seg.Handle));
        Assert.Same(seg, a.FindMapping(seg.Handle));
        Assert.Equal(3, pm.Row(seg.Handle)!.ReferenceCount); // the failed attaches changed nothing
    }

    [Fact]
    public void Detach_runs_callbacks_last_in_first_out_each_once_and_completes_even_when_one_throws()
    {
        using var pm = new DsmTestInstance("callbacks", DsmType.Posix);
        var a = pm.Session(0);
        var seg = a.Create(4096)!;
        var h = seg.Handle;
        var order = new List<string>();
        seg.OnDetach(s => order.Add("first"));
        seg.OnDetach(s => throw new InvalidOperationException("boom"));
        seg.OnDetach(s => order.Add($"third {s.Handle == h}"));
        Action<DsmSegment> cancelled = _ => order.Add("cancelled");
        seg.OnDetach(cancelled);
        Assert.True(seg.CancelOnDetach(cancelled));
        Assert.False(seg.CancelOnDetach(cancelled));

        var e = Assert.Throws<InvalidOperationException>(() => a.Detach(seg));
        Assert.Equal("boom", e.Message);
        Assert.Equal(["third True", "first"], order);
        Assert.False(seg.IsAttached);
        Assert.Null(pm.Row(h));                         // the detach completed: destroyed
        a.Detach(seg);                                  // nothing runs twice
        Assert.Equal(2, order.Count);
        Assert.Throws<InvalidOperationException>(() => seg.OnDetach(_ => { }));
    }

    [Fact]
    public void Pin_and_unpin_report_PostgreSQL_errors()
    {
        using var pm = new DsmTestInstance("pin-errors", DsmType.Posix);
        var a = pm.Session(0);
        using var seg = a.Create(4096)!;
        Assert.Equal("cannot unpin a segment that is not pinned", Assert.Throws<ShmemException>(() => a.Unpin(seg.Handle)).Message);
        a.Pin(seg);
        Assert.Equal("cannot pin a segment that is already pinned", Assert.Throws<ShmemException>(() => a.Pin(seg)).Message);
        Assert.Equal("cannot unpin unknown segment handle",
            Assert.Throws<ShmemException>(() => a.Unpin(new DsmHandle(seg.Handle.Value ^ 0x8000_0000))).Message);
        Assert.Equal("cannot unpin unknown segment handle", Assert.Throws<ShmemException>(() => a.Unpin(DsmHandle.Invalid)).Message);
        a.Unpin(seg.Handle);
        Assert.Equal(2, pm.Row(seg.Handle)!.ReferenceCount);
    }

    [Fact]
    public void A_pinned_segment_survives_with_no_process_attached_until_unpinned()
    {
        using var pm = new DsmTestInstance("pin-survives", DsmType.Mmap);
        var a = pm.Session(0);
        var seg = a.Create(4096)!;
        var h = seg.Handle;
        seg.Region.Ref<int>(0) = 7;
        a.Pin(seg);
        a.Detach(seg);
        Assert.Single(Directory.GetFiles(pm.Config.DynShmemDirectory, "dsm.*"));
        using (var again = pm.Session(1).Attach(h)!)
            Assert.Equal(7, again.Region.Ref<int>(0));
        a.Unpin(h);
        Assert.Empty(Directory.GetFiles(pm.Config.DynShmemDirectory, "dsm.*"));
    }

    [Theory]
    [InlineData(DsmKind.Posix, 0)]
    [InlineData(DsmKind.SysV, 0)]
    [InlineData(DsmKind.Posix, 1024 * 1024)]
    public void A_full_table_is_an_error_or_null_with_the_flag_and_a_freed_item_is_reused_with_a_new_handle(DsmKind kind, long mainRegion)
    {
        using var pm = new DsmTestInstance("exhaustion", (DsmType)kind, mainRegion: mainRegion, capacity: 3);
        var a = pm.Session(0);
        var segs = Enumerable.Range(0, 3).Select(_ => a.Create(4096)!).ToList();
        var e = Assert.Throws<ShmemException>(() => a.Create(4096));
        Assert.Equal("too many dynamic shared memory segments", e.Message);
        Assert.Null(a.Create(4096, DsmCreateFlags.NullIfMaxSegments));
        var stale = segs[1].Handle;
        a.Detach(segs[1]);
        using var reused = a.Create(4096)!;
        Assert.NotEqual(stale, reused.Handle);
        Assert.Null(pm.Session(1).Attach(stale));   // the old generation misses
        Assert.Equal(3, pm.Control.Inspect().Count);
    }

    [Fact]
    public void Main_region_handles_are_odd_and_OS_handles_even_and_nonzero()
    {
        using var pm = new DsmTestInstance("handles", DsmType.Posix, mainRegion: 64 * 1024);
        var a = pm.Session(0);
        using var small = a.Create(10_000)!;
        using var big = a.Create(100_000)!;
        Assert.True(small.Handle.IsMainRegion);
        Assert.Equal(1u, small.Handle.Value & 1);
        Assert.Equal(DsmImplementation.MainRegion, small.Implementation);
        Assert.Equal(0, small.Address % DsmPageAllocator.PageSize);
        Assert.False(big.Handle.IsMainRegion);
        Assert.Equal(0u, big.Handle.Value & 1);
        Assert.NotEqual(0u, big.Handle.Value);
        Assert.Equal(DsmImplementation.Posix, big.Implementation);
    }

    [Fact]
    public void A_pinned_mapping_outlives_Dispose_until_DetachAll()
    {
        using var pm = new DsmTestInstance("pin-mapping", DsmType.Posix);
        var a = pm.Session(0);
        var seg = a.Create(4096)!;
        a.PinMapping(seg);
        seg.Dispose();
        Assert.True(seg.IsAttached);
        a.UnpinMapping(seg);
        a.PinMapping(seg);
        var other = a.Create(4096)!;
        Assert.Equal(2, a.AttachedCount);
        var detached = new List<DsmHandle>();
        seg.OnDetach(s => detached.Add(s.Handle));
        other.OnDetach(s => detached.Add(s.Handle));
        a.DetachAll();
        Assert.Equal([other.Handle, seg.Handle], detached); // newest first
        Assert.Equal(0, a.AttachedCount);
        Assert.Empty(pm.Control.Inspect());
    }

    [Fact]
    public void A_process_can_hold_at_most_256_attachments()
    {
        using var pm = new DsmTestInstance("per-slot-limit", DsmType.Posix, mainRegion: 2 * 1024 * 1024, capacity: 400);
        var a = pm.Session(0);
        for (int i = 0; i < DsmControlLayout.MaxAttachmentsPerSlot; i++)
            a.Create(100);
        var e = Assert.Throws<ShmemException>(() => a.Create(100));
        Assert.Equal("too many dynamic shared memory segments attached by this process", e.Message);
        Assert.Equal(DsmControlLayout.MaxAttachmentsPerSlot, pm.Control.Inspect().Count); // nothing was reserved
        a.DetachAll();
        Assert.Empty(pm.Control.Inspect());
    }

    /// <summary>Simulates a full /dev/shm without filling it: tmpfs refuses a posix_fallocate larger than the file
    /// system at once. (Not for mmap: a disk file system would allocate blocks until it is really full.)</summary>
    [Fact]
    public void A_segment_larger_than_dev_shm_fails_at_once_with_a_clear_error_and_leaves_nothing()
    {
        using var pm = new DsmTestInstance("full", DsmType.Posix);
        var a = pm.Session(0);
        long tooBig = new DriveInfo("/dev/shm").TotalSize + 1024L * 1024 * 1024;
        var e = Assert.Throws<OsCallException>(() => a.Create(tooBig));
        Assert.Matches("^could not resize shared memory segment \"/pm\\.[0-9a-f]{16}\\.[0-9]+\" to [0-9]+ bytes: No space left on device$", e.Message);
        Assert.Contains($"\"/pm.{pm.Config.Tag}.", e.Message);
        Assert.Empty(pm.Control.Inspect());
        Assert.Empty(SegmentObjects(pm));
        using var fine = a.Create(4096)!;  // the item was given back
        Assert.NotNull(fine);
    }

    /// <summary>Release builds only: in Debug builds <see cref="Postmaster.Shmem.Locks.LockOwner"/> asserts that
    /// only the thread that created it uses it, even when the uses are serialised (as the session does).</summary>
    [ReleaseOnlyFact]
    public void Several_threads_of_one_process_share_a_session_safely()
    {
        using var pm = new DsmTestInstance("threads", DsmType.Posix, mainRegion: 256 * 1024, capacity: 200);
        var a = pm.Session(0);
        var b = pm.Session(1);
        var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var threads = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            try
            {
                for (int i = 0; i < 50; i++)
                {
                    var seg = a.Create(i % 2 == 0 ? 3000 : 70_000)!;
                    seg.Region.Ref<int>(0) = t * 1000 + i;
                    var other = b.Attach(seg.Handle)!;
                    Assert.Equal(t * 1000 + i, other.Region.Ref<int>(0));
                    b.Detach(other);
                    a.Detach(seg);
                }
            }
            catch (Exception e)
            {
                errors.Enqueue(e);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Empty(errors);
        Assert.Empty(pm.Control.Inspect());
        Assert.Equal(pm.Instance.DsmMainRegion!.PageCount, pm.Instance.DsmMainRegion.FreePages);
    }

    [Fact]
    public void Main_region_segments_are_not_zeroed_unless_asked_and_need_no_OS_object()
    {
        using var pm = new DsmTestInstance("main-zero", DsmType.SysV, mainRegion: 16 * 1024);
        var a = pm.Session(0);
        var first = a.Create(8192)!;
        first.Region.Span(0, 8192).Fill(0xEE);
        a.Detach(first);
        using var dirty = a.Create(8192)!;
        Assert.Equal(0xEE, dirty.Region.Span(0, 8192)[100]); // recycled pages, like PostgreSQL
        using var clean = a.Create(8192, DsmCreateFlags.Zeroed)!;
        Assert.Equal(-1, clean.Region.Span(0, 8192).IndexOfAnyExcept((byte)0));
        Assert.Empty(SegmentObjects(pm));
    }

    /// <summary>The instance's OS objects other than its control segment.</summary>
    private static List<DsmOsObject> SegmentObjects(DsmTestInstance pm) => pm.Tagged().Where(o => !IsControl(pm, o)).ToList();

    private static bool IsControl(DsmTestInstance pm, DsmOsObject o) =>
        o.Name.Contains(".ctl.") || o.Name.Contains("/control.") ||
        (o.Implementation == DsmImplementation.SysV && o.Name == ((uint)pm.Config.Names.SysVKey(DsmObjectKind.Control, pm.Control.Handle.Value)).ToString());
}

/// <summary>A fact skipped in Debug builds (see the test that uses it).</summary>
public sealed class ReleaseOnlyFactAttribute : FactAttribute
{
    public ReleaseOnlyFactAttribute()
    {
#if DEBUG
        Skip = "LockOwner's Debug-build thread-affinity assertion forbids sharing one owner between threads";
#endif
    }
}
