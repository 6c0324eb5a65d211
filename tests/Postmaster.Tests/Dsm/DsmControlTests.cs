using System.Runtime.CompilerServices;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Segments;
using Xunit;

namespace Postmaster.Tests.Dsm;

/// <summary>The control segment: layout, validation, handles, shutdown.</summary>
public sealed class DsmControlTests
{
    [Fact]
    public void Shared_structures_have_their_documented_sizes()
    {
        Assert.Equal(64, Unsafe.SizeOf<DsmSegmentHeader>());
        Assert.Equal(128, Unsafe.SizeOf<DsmControlHeader>());
        Assert.Equal(64, Unsafe.SizeOf<DsmControlItem>());
        Assert.Equal(64, Unsafe.SizeOf<DsmAttachmentRecord>());
        Assert.Equal(8, Unsafe.SizeOf<DsmAttachmentEntry>());
        Assert.Equal(256, Unsafe.SizeOf<DsmPageAllocatorHeader>());
        Assert.Equal(0, DsmControlLayout.RecordSize % 64);
        Assert.Equal(64 + 5 * 123, DsmControlLayout.DefaultCapacity(123));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(679)]
    [InlineData(1024)]
    [InlineData(DsmControlLayout.MaxCapacity)]
    public void Handle_fields_are_disjoint_and_round_trip(int capacity)
    {
        var codec = new DsmHandleCodec(DsmHandleCodec.IndexBitsFor(capacity));
        Assert.True(1L << codec.IndexBits >= capacity);
        Assert.True(codec.MaxGeneration >= 2047);
        foreach (int index in new[] { 0, capacity / 2, capacity - 1 })
        foreach (uint generation in new[] { 1u, 2u, codec.MaxGeneration })
        foreach (bool main in new[] { false, true })
        {
            uint h = codec.Encode(index, generation, main);
            Assert.NotEqual(0u, h);
            Assert.Equal(index, codec.IndexOf(h));
            Assert.Equal(generation, codec.GenerationOf(h));
            Assert.Equal(main, new DsmHandle(h).IsMainRegion);
        }
        Assert.Equal(1u, codec.NextGeneration(codec.MaxGeneration));
    }

    [Fact]
    public void Two_data_directories_get_different_tags_and_names()
    {
        using var one = new DsmTestInstance("tag-a", DsmType.Posix);
        using var two = new DsmTestInstance("tag-b", DsmType.Posix);
        Assert.NotEqual(one.Config.Tag, two.Config.Tag);
        Assert.NotEqual(one.Config.Names.Describe(DsmImplementation.Posix, DsmObjectKind.Segment, 2),
            two.Config.Names.Describe(DsmImplementation.Posix, DsmObjectKind.Segment, 2));
        Assert.NotEqual(one.Config.Names.SysVKey(DsmObjectKind.Segment, 2), two.Config.Names.SysVKey(DsmObjectKind.Segment, 2));
        Assert.True(File.Exists($"/dev/shm/pm.{one.Config.Tag}.ctl.{one.Control.Handle}"));
    }

    /// <summary>PostgreSQL's four dsm_control_segment_sane checks, plus the layout version, each made to fail on a
    /// copy of a real control segment.</summary>
    [Theory]
    [InlineData("magic", 0, 0x12345678)]
    [InlineData("layout version", 4, 99)]
    [InlineData("item count above capacity", 16, 1_000_000)]
    [InlineData("items do not fit the mapping", 20, 500_000)]
    [InlineData("negative item count", 16, -1)]
    public void A_control_segment_that_fails_a_sanity_check_is_rejected(string what, int offset, int value)
    {
        using var pm = new DsmTestInstance("sane", DsmType.Posix);
        var name = $"/pm.{pm.Config.Tag}.ctl.{pm.Control.Handle}";
        using (var raw = MappedSegment.AttachPosix(name)!)
        {
            ref int field = ref raw.Region.Ref<int>(DsmSegmentHeader.Size + offset);
            int saved = field;
            field = value;
            try
            {
                var e = Assert.Throws<ShmemCorruptException>(() => new DsmSession(pm.Instance, pm.Instance.Owners.CreateOwner(0), pm.Config));
                Assert.Equal("dynamic shared memory control segment is not valid", e.Message);
                Assert.NotNull(e.Detail);
            }
            finally
            {
                field = saved;
                pm.Instance.Owners.ResetSlot(0);
            }
        }
        Assert.NotNull(what);
        using var session = new DsmSession(pm.Instance, pm.Instance.Owners.CreateOwner(0), pm.Config);
        pm.Instance.Owners.ResetSlot(0);
    }

    [Fact]
    public void A_session_refuses_an_instance_without_a_control_segment()
    {
        using var pm = new DsmTestInstance("no-control", DsmType.Posix);
        pm.Main.Header.DsmControlHandle = 0;
        var e = Assert.Throws<ShmemException>(() => new DsmSession(pm.Instance, pm.Instance.Owners.CreateOwner(1), pm.Config));
        Assert.Equal("dynamic shared memory control segment is not valid", e.Message);
        pm.Instance.Owners.ResetSlot(1);
        pm.Main.Header.DsmControlHandle = pm.Control.Handle.Value;
    }

    [Theory]
    [InlineData(DsmKind.Posix)]
    [InlineData(DsmKind.SysV)]
    [InlineData(DsmKind.Mmap)]
    public void Shutdown_destroys_every_segment_pinned_ones_included_and_the_control_segment(DsmKind kind)
    {
        using var pm = new DsmTestInstance("shutdown", (DsmType)kind, mainRegion: 64 * 1024);
        var a = pm.Session(0);
        var pinned = a.Create(100_000)!;
        a.Pin(pinned);
        a.Detach(pinned);
        a.Create(200_000);
        a.Create(1000);                        // main region
        var moribund = pm.Control.Inspect();
        Assert.Equal(3, moribund.Count);
        Assert.Equal(3, pm.Tagged().Count);    // two segments and the control segment
        var summary = pm.Control.DestroyAll();
        Assert.Equal(new DsmShutdownSummary(false, 2, 0), summary);
        Assert.Empty(pm.Tagged());
        Assert.Equal(0u, pm.Main.Header.DsmControlHandle);
        Assert.Equal(default, pm.Control.DestroyAll()); // idempotent
    }

    [Fact]
    public void Shutdown_with_a_corrupt_control_segment_reports_it_and_still_removes_the_instance_objects()
    {
        using var pm = new DsmTestInstance("shutdown-corrupt", DsmType.Posix);
        var a = pm.Session(0);
        var seg = a.Create(4096)!;
        a.Pin(seg);
        a.Detach(seg);
        using (var raw = MappedSegment.AttachPosix($"/pm.{pm.Config.Tag}.ctl.{pm.Control.Handle}")!)
            raw.Region.Ref<uint>(DsmSegmentHeader.Size) = 0xDEADBEEF;
        var summary = pm.Control.DestroyAll();
        Assert.True(summary.ControlCorrupt);
        Assert.Equal(1, summary.SegmentsRemoved);
        Assert.True(pm.Log.Contains(Postmaster.Shmem.ShmemLogLevel.Log, "dynamic shared memory control segment is corrupt"));
        Assert.Empty(pm.Tagged());
    }

    [Fact]
    public void A_tool_can_attach_the_control_segment_to_inspect_but_not_to_destroy()
    {
        using var pm = new DsmTestInstance("inspect", DsmType.Posix);
        var a = pm.Session(2);
        using var seg = a.Create(12345)!;
        using var view = DsmControl.Attach(pm.Instance, pm.Config);
        var row = Assert.Single(view.Inspect());
        Assert.Equal(seg.Handle, row.Handle);
        Assert.Equal(12345, row.Size);
        Assert.Equal(DsmImplementation.Posix, row.Implementation);
        Assert.Equal(2, row.ReferenceCount);
        Assert.Equal(DsmItemState.Live, row.State);
        Assert.Equal([new DsmAttachment(2, Environment.ProcessId, true, false)], row.AttachedBy);
        Assert.Equal(Environment.ProcessId, row.CreatorPid);
        Assert.Throws<InvalidOperationException>(() => view.DestroyAll());
    }

    /// <summary>A name or key already taken (a foreign SysV segment, a stale POSIX object) makes creation move on
    /// to the item's next generation; the other object is left alone.</summary>
    [Theory]
    [InlineData(DsmKind.Posix)]
    [InlineData(DsmKind.SysV)]
    public void A_taken_name_or_key_is_skipped_by_moving_to_the_next_generation(DsmKind kind)
    {
        const int Capacity = 16;
        using var pm = new DsmTestInstance("collision", (DsmType)kind, capacity: Capacity);
        var codec = new DsmHandleCodec(DsmHandleCodec.IndexBitsFor(Capacity));
        uint first = codec.Encode(0, 1, mainRegion: false); // what the first creation would get
        var names = pm.Config.Names;
        using var squatter = kind == DsmKind.SysV
            ? MappedSegment.CreateSysV(names.SysVKey(DsmObjectKind.Segment, first), 4096)!
            : MappedSegment.CreatePosix(names.Describe(DsmImplementation.Posix, DsmObjectKind.Segment, first), 4096)!;
        try
        {
            squatter.Region.Ref<long>(0) = 77;
            var a = pm.Session(0);
            using var seg = a.Create(4096)!;
            Assert.NotEqual(first, seg.Handle.Value);
            Assert.Equal(0, codec.IndexOf(seg.Handle.Value));
            Assert.Equal(2u, codec.GenerationOf(seg.Handle.Value));
            Assert.Equal(seg.Handle, Assert.Single(pm.Control.Inspect()).Handle);
            Assert.Equal([new DsmAttachment(0, Environment.ProcessId, true, false)], pm.Row(seg.Handle)!.AttachedBy);
            Assert.Equal(77, squatter.Region.Ref<long>(0));
        }
        finally
        {
            squatter.Destroy();
        }
    }

    [Fact]
    public void After_a_full_restart_a_new_control_segment_serves_new_sessions()
    {
        using var pm = new DsmTestInstance("restart", DsmType.Posix, mainRegion: 64 * 1024);
        using (var owner = pm.Instance.Owners.CreateOwner(0, pm.Instance.Tranches))
        {
            var before = new DsmSession(pm.Instance, owner, pm.Config);
            var seg = before.Create(4096)!;
            before.Pin(seg);
            before.Create(100_000);
            Assert.Equal(DsmImplementation.MainRegion, seg.Implementation);
            // Every backend is dead (here: its session is simply abandoned), then the supervisor resets.
            Assert.Equal(new DsmShutdownSummary(false, 1, 0), pm.Control.DestroyAll());
            pm.Control.Dispose();
        }
        pm.Instance.Owners.ResetSlot(0);
        var fresh = DsmControl.Create(pm.Instance, pm.Config, 32, pm.Log);
        pm.Main.Header.DsmControlHandle = fresh.Handle.Value;
        pm.ReplaceControl(fresh);
        var a = pm.Session(0);
        using var again = a.Create(64 * 1024)!;
        Assert.Equal(DsmImplementation.MainRegion, again.Implementation); // every page was given back
        Assert.Single(pm.Control.Inspect());
    }
}
