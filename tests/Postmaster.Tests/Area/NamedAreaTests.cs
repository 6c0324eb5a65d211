using Postmaster.Shmem.Area;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Registry;
using Postmaster.Tests.Dsm;
using Xunit;

namespace Postmaster.Tests.Area;

/// <summary>The registry's typed entries (PostgreSQL 19's GetNamedDSA / GetNamedDSHash): exactly-once creation by name,
/// type and parameter checks, the listing's type and size, and release destroying the whole area.</summary>
public sealed class NamedAreaTests
{
    [Fact]
    public void Two_backends_get_the_same_named_area_and_table_and_the_listing_shows_their_types_and_sizes()
    {
        using var pm = new DsmTestInstance("named-area", DsmType.Posix);
        var a = pm.Registry(0);
        var b = pm.Registry(1);
        var areaA = a.GetNamedArea("my area", out bool foundA);
        var areaB = b.GetNamedArea("my area", out bool foundB);
        Assert.False(foundA);
        Assert.True(foundB);
        Assert.Equal(areaA.Handle, areaB.Handle);
        Assert.Same(areaA, a.GetNamedArea("my area", out _));
        var p = areaA.Allocate(100);
        areaA.Region(p, 8).Ref<long>(0) = 99;
        Assert.Equal(99, areaB.Region(p, 8).Ref<long>(0));

        var tableA = a.GetNamedHashTable("my table", 8, 8, out bool tFoundA);
        var tableB = b.GetNamedHashTable("my table", 8, 8, out bool tFoundB);
        Assert.False(tFoundA);
        Assert.True(tFoundB);
        tableA.Set(BitConverter.GetBytes(1L), "one"u8);
        Assert.Equal("one"u8.ToArray(), tableB.Get(BitConverter.GetBytes(1L)));

        var big = areaB.Allocate(5 << 20); // the area grows: the listing follows
        var rows = a.List().ToDictionary(r => r.Name);
        Assert.Equal(DsmRegistryEntryType.Area, rows["my area"].Type);
        Assert.Equal(DsmRegistryEntryType.HashTable, rows["my table"].Type);
        Assert.Equal(areaA.TotalSize, rows["my area"].TotalSize);
        Assert.True(rows["my area"].TotalSize > 5 << 20);
        Assert.Equal(SharedArea.DefaultInitialSegmentSize, rows["my table"].TotalSize);
        areaB.Free(big);
        areaA.Free(p);
    }

    [Fact]
    public void A_name_of_another_type_or_with_other_key_parameters_is_refused()
    {
        using var pm = new DsmTestInstance("named-types", DsmType.Posix);
        var a = pm.Registry(0);
        a.GetNamedSegment("seg", 4096, null, out _);
        a.GetNamedArea("area", out _);
        a.GetNamedHashTable("table", 0, 100, out _);

        var e = Assert.Throws<ShmemException>(() => a.GetNamedArea("seg", out _));
        Assert.Equal("requested DSM segment does not match type of existing entry", e.Message);
        Assert.Equal("\"seg\" is a segment; a shared area was requested.", e.Detail);
        Assert.Equal("requested DSM segment does not match type of existing entry",
            Assert.Throws<ShmemException>(() => a.GetNamedSegment("area", SharedArea.DefaultInitialSegmentSize, null, out _)).Message);
        Assert.Equal("requested DSM segment does not match type of existing entry",
            Assert.Throws<ShmemException>(() => a.GetNamedHashTable("area", 0, 100, out _)).Message);
        var keys = Assert.Throws<ShmemException>(() => a.GetNamedHashTable("table", 16, 16, out _));
        Assert.Equal("requested shared hash table parameters do not match the existing table", keys.Message);
        Assert.Equal(3, a.List().Count);
    }

    [Fact]
    public void Releasing_a_named_area_destroys_all_its_segments_and_the_name_can_be_made_again()
    {
        using var pm = new DsmTestInstance("named-release", DsmType.Posix);
        var a = pm.Registry(0);
        var b = pm.Registry(1);
        var area = a.GetNamedArea("grown", out _);
        var blocks = Enumerable.Range(0, 6).Select(_ => area.Allocate(1 << 20)).ToList();
        Assert.True(area.SegmentCount > 3);
        var other = b.GetNamedArea("grown", out _);
        other.Region(blocks[5], 8).Ref<long>(0) = 1; // b maps the last segment too

        Assert.True(a.Release("grown"));
        Assert.True(other.IsDestroyed);
        Assert.Contains("has been destroyed", Assert.Throws<ShmemException>(() => other.Allocate(8)).Message);
        other.Detach();
        Assert.Empty(pm.Control.Inspect());

        var again = b.GetNamedArea("grown", out bool found);
        Assert.False(found);
        Assert.Equal(1, again.SegmentCount);
        Assert.True(b.Release("grown"));
        Assert.Empty(pm.Control.Inspect());
    }

    [Fact]
    public void A_named_table_whose_area_cannot_grow_refuses_a_big_value_and_stays_usable()
    {
        using var pm = new DsmTestInstance("named-fail", DsmType.Posix, capacity: 3);
        var a = pm.Registry(0);
        a.GetNamedSegment("one", 4096, null, out _);
        a.GetNamedSegment("two", 4096, null, out _);
        // One DSM slot left: the table's area takes it, so its first segment works, and everything stays in it.
        var table = a.GetNamedHashTable("table", 4, 4, out bool found);
        Assert.False(found);
        // The area cannot grow: a big value fails with out of memory and the table is unchanged.
        var oom = Assert.Throws<ShmemException>(() => table.Set(BitConverter.GetBytes(1), new byte[2 << 20]));
        Assert.Equal("out of memory", oom.Message);
        Assert.Equal(0, table.Count);
        table.Set(BitConverter.GetBytes(2), "small"u8);
        Assert.Equal(1, table.Count);
    }
}
