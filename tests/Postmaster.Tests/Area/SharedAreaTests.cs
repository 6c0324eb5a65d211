using Postmaster.Shmem.Area;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Tests.Dsm;
using Xunit;

namespace Postmaster.Tests.Area;

/// <summary>Single-process semantics of <see cref="SharedArea"/>: sessions on two slots of one process stand for two
/// backends (each maps segments on its own). Every instance checks on Dispose that nothing of it is left.</summary>
public sealed class SharedAreaTests
{
    private static SharedArea NewArea(DsmTestInstance pm, DsmSession session, long initial = SharedArea.MinInitialSegmentSize,
        long limit = long.MaxValue) =>
        SharedArea.Create(session, session.Owner, pm.Instance.Tranches, initial, limit);

    [Theory]
    [MemberData(nameof(DsmTestInstance.Kinds), MemberType = typeof(DsmTestInstance))]
    public void Random_allocations_and_frees_never_overlap_and_keep_their_contents(DsmKind kind, long mainRegion)
    {
        using var pm = new DsmTestInstance("area-model", (DsmType)kind, mainRegion: mainRegion);
        var session = pm.Session(0);
        var area = NewArea(pm, session);
        var random = new Random(1234);
        var live = new Dictionary<ulong, (long Size, byte Fill)>();
        for (int step = 0; step < 6000; step++)
        {
            if (live.Count > 0 && random.Next(3) == 0)
            {
                var victim = live.Keys.ElementAt(random.Next(live.Count));
                Verify(area, victim, live[victim]);
                area.Free(new AreaPointer(victim));
                live.Remove(victim);
                continue;
            }
            long size = random.Next(10) switch
            {
                0 => random.Next(8193, 70_000),          // large: whole pages
                1 => 1,
                _ => random.Next(1, 8193),               // every size class
            };
            var p = area.Allocate(size);
            Assert.False(p.IsNull);
            Assert.False(live.ContainsKey(p.Value));
            var block = area.Block(p);
            Assert.True(block.Size >= size, $"block of {block.Size} bytes for a request of {size}");
            byte fill = (byte)random.Next(1, 256);
            area.Region(p, size).Span(0, (int)size).Fill(fill);
            live[p.Value] = (size, fill);
        }
        foreach (var (p, v) in live)
            Verify(area, p, v);
        Assert.Equal(live.Count, area.Allocations);
        foreach (var p in live.Keys)
            area.Free(new AreaPointer(p));
        Assert.Equal(0, area.Allocations);
        Assert.Equal(0, area.AllocatedBytes);
        Assert.True(area.SegmentCount > 1, "the area grew past its first segment");
        area.Destroy();
    }

    private static void Verify(SharedArea area, ulong pointer, (long Size, byte Fill) v)
    {
        var span = area.Region(new AreaPointer(pointer), v.Size).Span(0, (int)v.Size);
        Assert.Equal(-1, span.IndexOfAnyExcept(v.Fill));
    }

    [Fact]
    public void Freed_space_is_reused_and_the_area_stops_at_its_size_limit_with_a_clear_error()
    {
        using var pm = new DsmTestInstance("area-limit", DsmType.Posix);
        var session = pm.Session(0);
        var area = NewArea(pm, session, limit: 1 << 20);
        var blocks = new List<AreaPointer>();
        ShmemException? full = null;
        try
        {
            while (true)
                blocks.Add(area.Allocate(20_000));
        }
        catch (ShmemException e)
        {
            full = e;
        }
        Assert.Equal("out of memory", full.Message);
        Assert.Contains("Failed on shared area request of size 20000", full.Detail);
        Assert.Contains("limit of 1048576", full.Detail);
        Assert.True(area.TotalSize <= 1 << 20);
        Assert.True(blocks.Count > 30, $"{blocks.Count} blocks of 20000 bytes in 1 MiB");
        Assert.True(area.Allocate(20_000, nullIfFull: true).IsNull);

        long total = area.TotalSize;
        foreach (var b in blocks)
            area.Free(b);
        for (int i = 0; i < blocks.Count; i++)
            blocks[i] = area.Allocate(20_000); // the same space again: no growth, no error
        Assert.Equal(total, area.TotalSize);
        foreach (var b in blocks)
            area.Free(b);
        area.Destroy();
    }

    [Fact]
    public void Bad_pointers_and_sizes_are_refused_and_change_nothing()
    {
        using var pm = new DsmTestInstance("area-bad", DsmType.Posix);
        var session = pm.Session(0);
        var area = NewArea(pm, session);
        var small = area.Allocate(100);
        var large = area.Allocate(50_000);

        Assert.Throws<ArgumentOutOfRangeException>(() => area.Allocate(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => area.Allocate(SharedArea.MaxAllocationSize + 1));
        Assert.Throws<ArgumentException>(() => area.Free(AreaPointer.Null));
        Assert.Throws<ArgumentException>(() => area.Free(small.Add(8)));           // inside a block
        Assert.Throws<ArgumentException>(() => area.Free(large.Add(4096)));        // inside a page run
        Assert.Throws<ArgumentException>(() => area.Free(AreaPointer.Make(7, 0)));  // no such segment
        Assert.Throws<ArgumentException>(() => area.Free(AreaPointer.Make(0, 64))); // the metadata
        area.Free(large);
        Assert.Throws<ArgumentException>(() => area.Free(large));                  // freed twice
        area.Free(small);
        Assert.Throws<ArgumentException>(() => area.Free(small));                  // its superblock is wholly free
        Assert.Equal(0, area.Allocations);
        Assert.Throws<ArgumentOutOfRangeException>(() => NewArea(pm, session, initial: 4096));
        area.Destroy();
    }

    [Fact]
    public void Another_backend_attaches_by_handle_and_maps_new_segments_when_it_first_touches_them()
    {
        using var pm = new DsmTestInstance("area-two", DsmType.Posix);
        var a = pm.Session(0);
        var b = pm.Session(1);
        var area = NewArea(pm, a);
        var other = SharedArea.Attach(b, b.Owner, area.Handle);
        Assert.Same(other, SharedArea.Attach(b, b.Owner, area.Handle));
        int mappedBefore = b.AttachedCount;

        var far = area.Allocate(3 << 20); // a segment of its own, made by a
        area.Region(far, 8).Ref<long>(0) = 0x1234_5678;
        Assert.Equal(mappedBefore, b.AttachedCount); // b has not touched it yet
        Assert.Equal(0x1234_5678, other.Region(far, 8).Ref<long>(0));
        Assert.Equal(mappedBefore + 1, b.AttachedCount);

        var fromB = other.Allocate(64);
        other.Region(fromB, 8).Ref<long>(0) = 42;
        Assert.Equal(42, area.Region(fromB, 8).Ref<long>(0));
        area.Free(fromB);
        other.Free(far);
        Assert.Equal(0, other.Allocations);

        other.Destroy();
        Assert.True(area.IsDestroyed);
        Assert.Equal("shared area " + area.Handle + " has been destroyed",
            Assert.Throws<ShmemException>(() => area.Allocate(8)).Message);
        area.Detach();
        Assert.Throws<ObjectDisposedException>(() => area.Allocate(8));
        Assert.Empty(pm.Control.Inspect()); // every segment of the area is gone once both detached
    }

    [Fact]
    public void Threads_of_one_process_allocate_and_free_concurrently()
    {
        using var pm = new DsmTestInstance("area-threads", DsmType.Posix);
        var session = pm.Session(0);
        var area = NewArea(pm, session);
        var errors = new List<Exception>();
        var threads = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            try
            {
                var random = new Random(t);
                var mine = new List<(AreaPointer P, int Size, byte Fill)>();
                for (int i = 0; i < 4000; i++)
                {
                    if (mine.Count > 50 || (mine.Count > 0 && random.Next(2) == 0))
                    {
                        int k = random.Next(mine.Count);
                        var (p, size, fill) = mine[k];
                        if (area.Region(p, size).Span(0, size).IndexOfAnyExcept(fill) >= 0)
                            throw new InvalidOperationException($"block {p} was overwritten");
                        area.Free(p);
                        mine.RemoveAt(k);
                    }
                    else
                    {
                        int size = random.Next(1, 20_000);
                        var p = area.Allocate(size);
                        byte fill = (byte)(t + 1);
                        area.Region(p, size).Span(0, size).Fill(fill);
                        mine.Add((p, size, fill));
                    }
                }
                foreach (var (p, _, _) in mine)
                    area.Free(p);
            }
            catch (Exception e)
            {
                lock (errors)
                    errors.Add(e);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Empty(errors);
        Assert.Equal(0, area.Allocations);
        area.Destroy();
    }

    [Fact]
    public void A_damaged_control_is_refused_on_attach()
    {
        using var pm = new DsmTestInstance("area-damaged", DsmType.Posix);
        var a = pm.Session(0);
        var b = pm.Session(1);
        var area = NewArea(pm, a);
        var control = a.FindMapping(area.Handle)!;
        control.Region.Ref<uint>(AreaSegmentHeader.Size) ^= 0xFFFF; // the control's magic
        var e = Assert.Throws<ShmemCorruptException>(() => SharedArea.Attach(b, b.Owner, area.Handle));
        Assert.Equal($"shared area {area.Handle} is not valid", e.Message);
        Assert.Contains("magic", e.Detail);
        control.Region.Ref<uint>(AreaSegmentHeader.Size) ^= 0xFFFF;
        Assert.NotNull(SharedArea.Attach(b, b.Owner, area.Handle));
        area.Destroy();
    }
}
