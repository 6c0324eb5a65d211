using System.Runtime.InteropServices;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Tests.Dsm;
using Postmaster.Workers;
using Xunit;
using DsmRegistry = Postmaster.Workers.DsmRegistry;
using EngineRegistry = Postmaster.Shmem.Registry.DsmRegistry;

namespace Postmaster.Tests.Sdk;

/// <summary>The SDK's shared area and hash table facades: one object per area and table in a process, pointers that
/// mean the same in two backends, the typed table, and the registry's typed names.</summary>
public sealed class AreaFacadeTests
{
    [StructLayout(LayoutKind.Sequential)]
    private struct Point
    {
        public long X;
        public long Y;
    }

    [Fact]
    public void Areas_and_tables_work_through_the_sdk_from_two_backends()
    {
        using var pm = new DsmTestInstance("sdk-area", DsmType.Posix);
        var a = new DynamicSharedMemory(pm.Session(0));
        var b = new DynamicSharedMemory(pm.Session(1));
        var area = a.CreateArea();
        Assert.Same(area, a.AttachArea(area.Handle));
        var other = b.AttachArea(area.Handle);
        Assert.NotSame(area, other);

        var p = area.Allocate(24, zero: true);
        Assert.True(area.Region(p).Size >= 24);
        area.Region(p).Ref<long>(16) = 5;
        Assert.Equal(5, other.Region(p).Ref<long>(16));
        Assert.True(other.TryAllocate(100, out var q));
        other.Free(q);
        Assert.Throws<ArgumentOutOfRangeException>(() => area.Allocate(0));
        other.Free(p);
        Assert.Throws<ArgumentException>(() => area.Region(p));

        var points = SharedHashTable<long, Point>.Create(area);
        Assert.True(points.Set(1, new Point { X = 1, Y = 2 }));
        var seen = SharedHashTable<long, Point>.Attach(other, points.Pointer);
        Assert.True(seen.TryGetValue(1, out var point));
        Assert.Equal(2, point.Y);
        Assert.True(seen.Update(1, (ref Point v) => v.X += 10));
        Assert.True(points.TryGetValue(1, out point));
        Assert.Equal(11, point.X);
        Assert.False(points.TryAdd(1, default));
        Assert.Equal([1L], points.Items().Select(i => i.Key));
        Assert.True(points.Remove(1));
        Assert.Throws<ArgumentException>(() => SharedHashTable<int, Point>.Attach(other, points.Pointer)); // key size 8, not 4

        var bytes = SharedHashTable.Create(area);
        Assert.True(bytes.Set("k"u8, "v1"u8));
        Assert.False(bytes.TryUpdate("k"u8, "v3"u8, "v2"u8));
        Assert.True(bytes.TryUpdate("k"u8, "v2"u8, "v1"u8));
        Assert.Equal("v2"u8.ToArray(), SharedHashTable.Attach(other, bytes.Pointer).Get("k"u8));
        area.Destroy();
        Assert.True(other.IsDestroyed);
        other.Detach();
    }

    [Fact]
    public void The_registry_gives_named_areas_and_tables_and_lists_their_type()
    {
        using var pm = new DsmTestInstance("sdk-named", DsmType.Posix);
        var s0 = pm.Session(0);
        var s1 = pm.Session(1);
        var r0 = new DsmRegistry(new EngineRegistry(pm.Instance, s0.Owner, s0));
        var r1 = new DsmRegistry(new EngineRegistry(pm.Instance, s1.Owner, s1));
        var counters = r0.GetNamedHashTable<int, long>("counters", out bool found);
        Assert.False(found);
        counters.Set(7, 70);
        Assert.True(r1.GetNamedHashTable<int, long>("counters", out found).TryGetValue(7, out long v));
        Assert.True(found);
        Assert.Equal(70, v);
        var area = r1.GetNamedArea("scratch", out found);
        Assert.False(found);
        Assert.Same(area, r1.GetNamedArea("scratch", out _));
        Assert.Equal("requested DSM segment does not match type of existing entry",
            Assert.Throws<ShmemException>(() => r0.GetNamedSegment("counters", 64, null, out _)).Message);
        var rows = r0.List().ToDictionary(e => e.Name);
        Assert.Equal(DsmRegistryEntryType.HashTable, rows["counters"].Type);
        Assert.Equal(DsmRegistryEntryType.Area, rows["scratch"].Type);
        Assert.Equal(SharedArea.DefaultInitialSegmentSize, rows["scratch"].TotalSize);
        Assert.True(r0.Release("scratch"));
        Assert.True(area.IsDestroyed);
    }
}
