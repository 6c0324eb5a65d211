using Postmaster.Shmem;
using Postmaster.Shmem.Area;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Tests.Dsm;
using Xunit;

namespace Postmaster.Tests.Area;

/// <summary>Tables of fixed keys of up to 8 bytes keep small entries inline in their bucket slots: the same semantics
/// as chained items (against a model, through growth, values moving between a slot and an item), and a tampered slot
/// or chain is an exception, never a crash or a hang.</summary>
public sealed class SharedHashTableInlineTests
{
    private static (SharedArea Area, SharedHashTable Table) NewTable(DsmTestInstance pm, DsmSession session, int keySize)
    {
        var area = SharedArea.Create(session, session.Owner, pm.Instance.Tranches, SharedArea.DefaultInitialSegmentSize);
        return (area, SharedHashTable.Create(area, keySize));
    }

    [Theory]
    [InlineData(8)]
    [InlineData(3)]
    public void Inline_entries_and_chained_items_match_a_dictionary_through_growth(int keySize)
    {
        using var pm = new DsmTestInstance("hash-inline", DsmType.Posix);
        var a = pm.Session(0);
        var b = pm.Session(1);
        var (area, table) = NewTable(pm, a, keySize);
        Assert.True(table.HasInlineSlots);
        var other = SharedHashTable.Attach(SharedArea.Attach(b, b.Owner, area.Handle), table.Pointer);
        var model = new Dictionary<long, byte[]>();
        var random = new Random(7);
        byte[] Key(long k) => BitConverter.GetBytes(k)[..keySize];
        long range = keySize == 8 ? 20_000 : 1 << 20;
        for (int step = 0; step < 60_000; step++)
        {
            long k = random.NextInt64(range) * (keySize == 8 ? 0x1_0000_0001L : 1); // 8-byte keys use their high half too
            if (k == 5 * 0x1_0000_0001L)
                k = 0; // the all-zero key, which an empty slot entry also holds
            byte[] key = Key(k);
            long modelKey = BitConverter.ToInt64([.. key, .. new byte[8 - keySize]]);
            switch (random.Next(7))
            {
                case 0 or 1 or 2:
                    var value = new byte[random.Next(4) == 0 ? random.Next(9, 40) : random.Next(0, 9)]; // mostly inline-sized
                    random.NextBytes(value);
                    Assert.Equal(!model.ContainsKey(modelKey), table.Set(key, value));
                    model[modelKey] = value;
                    break;
                case 3:
                    Assert.Equal(model.Remove(modelKey), table.Remove(key));
                    break;
                case 4:
                    bool present = model.TryGetValue(modelKey, out var current);
                    Assert.Equal(present, table.Update(key, static (span, _) => span.Reverse(), 0));
                    if (present)
                        Array.Reverse(current!);
                    break;
                default:
                    var got = table.Get(key);
                    if (model.TryGetValue(modelKey, out var expected))
                        Assert.Equal(expected, got);
                    else
                        Assert.Null(got);
                    break;
            }
        }
        Assert.Equal(model.Count, table.Count);
        // The second session reads on a thread of its own (a thread uses one lock owner, as a backend's threads do).
        Dictionary<long, byte[]>? items = null;
        List<long>? wrong = null;
        var readBack = new Thread(() =>
        {
            wrong = model.Where(p => other.Get(Key(p.Key)) is not { } got || !got.AsSpan().SequenceEqual(p.Value)).Select(p => p.Key).ToList();
            items = other.Items().ToDictionary(p => BitConverter.ToInt64([.. p.Key, .. new byte[8 - keySize]]), p => p.Value);
        });
        readBack.Start();
        readBack.Join();
        Assert.Equal([], wrong!);
        Assert.NotNull(items);
        Assert.Equal(model.Count, items.Count);
        foreach (var (k, v) in model)
            Assert.Equal(v, items[k]);
        Assert.True(table.Resizes > 0);
        table.Destroy();
        Assert.Equal(0, area.Allocations - 1); // every spilled item was freed; only the control block stays
        area.Destroy();
    }

    [Fact]
    public void A_value_moves_between_its_slot_and_an_item_as_its_size_changes()
    {
        using var pm = new DsmTestInstance("hash-inline-values", DsmType.Posix);
        var session = pm.Session(0);
        var (area, table) = NewTable(pm, session, 8);
        var key = BitConverter.GetBytes(42L);
        long baseline = area.Allocations;
        var small = new byte[2];
        foreach (int size in new[] { 8, 0, 9, 100_000, 3, 8192, 1, 2_000_000, 5, 0 })
        {
            var value = Enumerable.Range(0, size).Select(i => (byte)(i * 7 + size)).ToArray();
            table.Set(key, value);
            Assert.Equal(value, table.Get(key));
            Assert.Equal(size, table.Read(key, small));
        }
        Assert.Equal(baseline, area.Allocations); // a value of 5 then 0 bytes fits the slot: no item left behind
        Assert.True(table.TryUpdate(key, [1, 2, 3], []));
        Assert.False(table.TryUpdate(key, [9], [1, 2]));
        Assert.True(table.Update(key, static (span, _) => span[0] = 7, 0));
        Assert.Equal(new byte[] { 7, 2, 3 }, table.Get(key));
        Assert.False(table.Set(key, [4], onlyIfAbsent: true));
        Assert.Equal(1, table.Count);
        Assert.True(table.Remove(key));
        Assert.False(table.ContainsKey(key));
        Assert.False(table.Remove(key));
        area.Destroy();
    }

    [Fact]
    public void Tables_of_other_keys_keep_plain_slots()
    {
        using var pm = new DsmTestInstance("hash-plain", DsmType.Posix);
        var session = pm.Session(0);
        var area = SharedArea.Create(session, session.Owner, pm.Instance.Tranches);
        Assert.False(SharedHashTable.Create(area, 0).HasInlineSlots);
        Assert.False(SharedHashTable.Create(area, 16).HasInlineSlots);
        Assert.True(SharedHashTable.Create(area, 1).HasInlineSlots);
        area.Destroy();
    }

    /// <summary>The bucket slot of <paramref name="key"/> (its first 8 bytes the chain) and the slot's index.</summary>
    private static (ShmemRegion Slot, long Index) SlotOf(SharedArea area, SharedHashTable table, ReadOnlySpan<byte> key)
    {
        ref var header = ref area.Region(table.Pointer, HashTableHeader.Size).Ref<HashTableHeader>(0);
        var slots = area.Region(new AreaPointer(header.Buckets), (1L << header.SizeLog2) << header.SlotShift);
        long index = SharedHashTable.Hash(key) >> (32 - header.SizeLog2);
        return (slots.Slice(index << header.SlotShift, 1L << header.SlotShift), index);
    }

    /// <summary>An absent key whose bucket is <paramref name="index"/>: a find of it walks that bucket's chain.</summary>
    private static byte[] AbsentKeyOfBucket(SharedArea area, SharedHashTable table, long index)
    {
        for (long k = 1_000_000; ; k++)
        {
            var key = BitConverter.GetBytes(k);
            if (SlotOf(area, table, key).Index == index && !table.ContainsKey(key))
                return key;
        }
    }

    [Theory]
    [InlineData(8)]
    [InlineData(0)]
    public void A_tampered_bucket_is_reported_as_corruption(int keySize)
    {
        using var pm = new DsmTestInstance("hash-tampered", DsmType.Posix);
        var session = pm.Session(0);
        var (area, table) = NewTable(pm, session, keySize);
        var key = BitConverter.GetBytes(1234L);
        table.Set(key, keySize == 0 ? new byte[100] : BitConverter.GetBytes(1L)); // an item, or an inline entry
        var (slot, index) = SlotOf(area, table, key);
        var sibling = AbsentKeyOfBucket(area, table, index);
        ref ulong chain = ref slot.Ref<ulong>(0);
        ulong saved = chain;
        foreach (ulong bad in new[] { AreaPointer.Make(1000, 64).Value, AreaPointer.Make(0, 1L << 39).Value, AreaPointer.Make(0, (1L << 20) - 8).Value })
        {
            chain = bad; // a chain pointer outside the area, far past its segment, or across its segment's end
            Assert.Throws<ShmemCorruptException>(() => table.Get(sibling));
            Assert.Throws<ShmemCorruptException>(() => table.Set(sibling, [1]));
            Assert.Throws<ShmemCorruptException>(() => table.Items().ToList());
            if (keySize == 0)
                Assert.Throws<ShmemCorruptException>(() => table.Remove(key));
            else
                Assert.Equal(1L, BitConverter.ToInt64(table.Get(key))); // inline: found without the chain
        }
        chain = saved;

        if (keySize == 8)
        {
            ref byte length = ref slot.Ref<byte>(8); // the first inline entry's length byte
            byte was = length;
            length = 200; // a value of 199 bytes in an 8-byte entry
            Assert.Throws<ShmemCorruptException>(() => table.Get(key));
            Assert.Throws<ShmemCorruptException>(() => table.Update(key, static (_, _) => { }, 0));
            length = was;
        }
        else
        {
            var item = area.Region(new AreaPointer(saved), SharedHashTable.ItemHeaderSize);
            item.Ref<ulong>(0) = saved; // a chain that loops back to itself: the walk is bounded, not a hang
            Assert.Throws<ShmemCorruptException>(() => table.Get(sibling));
            item.Ref<ulong>(0) = 0;
            int was = item.Ref<int>(16);
            item.Ref<int>(16) = int.MaxValue; // a value length past the item's block
            Assert.Throws<ShmemCorruptException>(() => table.Get(key));
            item.Ref<int>(16) = was;
        }
        Assert.NotNull(table.Get(key)); // repaired: readable again
        area.Destroy();
    }

    [Fact]
    public void A_table_of_another_layout_version_is_refused()
    {
        using var pm = new DsmTestInstance("hash-version", DsmType.Posix);
        var session = pm.Session(0);
        var (area, table) = NewTable(pm, session, 8);
        ref var header = ref area.Region(table.Pointer, HashTableHeader.Size).Ref<HashTableHeader>(0);
        header.LayoutVersion = 2;
        Assert.Contains("layout version 2", Assert.Throws<ShmemCorruptException>(() => SharedHashTable.Attach(area, table.Pointer)).Detail);
        header.LayoutVersion = HashTableHeader.CurrentLayoutVersion;
        header.SlotShift = 3; // plain slots for 8-byte keys: not what this build writes
        Assert.Throws<ShmemCorruptException>(() => SharedHashTable.Attach(area, table.Pointer));
        area.Destroy();
    }
}
