using System.Runtime.InteropServices;
using System.Text;
using Postmaster.Shmem.Errors;
using Xunit;

namespace KeyValue.Tests;

public sealed class KvTableTests
{
    private byte[] _memory = SmallTable(slotsPerPartition: 8);

    private KvTable Table => KvTable.Attach(_memory);

    [Fact]
    public void Gets_what_was_set()
    {
        Assert.Equal(KvStatus.Ok, Table.Set("key"u8, "value"u8));
        Assert.Equal("value", Get("key"));
        Assert.True(Table.Contains("key"u8));
        Assert.Null(Get("other"));
        Assert.False(Table.Contains("other"u8));
    }

    [Fact]
    public void Set_replaces_the_value_with_a_longer_or_a_shorter_one()
    {
        Table.Set("key"u8, "first"u8);
        Table.Set("key"u8, "a longer second value"u8);
        Assert.Equal("a longer second value", Get("key"));
        Table.Set("key"u8, "3"u8);
        Assert.Equal("3", Get("key"));
        Assert.Equal(1, TotalCount());
    }

    [Fact]
    public void Stores_an_empty_key_and_an_empty_value()
    {
        Assert.Equal(KvStatus.Ok, Table.Set(""u8, ""u8));
        Assert.Equal("", Get(""));
        Assert.Equal(1, TotalCount());
    }

    [Fact]
    public void Keys_and_values_are_binary()
    {
        byte[] key = [0, 255, 13, 10];
        byte[] value = [0, 1, 2, 0];
        Table.Set(key, value);
        Assert.True(Table.TryGet(key, out var stored));
        Assert.Equal(value, stored.ToArray());
        Assert.False(Table.Contains([0, 255, 13]));
    }

    [Fact]
    public void Delete_removes_only_its_key()
    {
        Table.Set("a"u8, "1"u8);
        Table.Set("b"u8, "2"u8);
        Assert.True(Table.Delete("a"u8));
        Assert.False(Table.Delete("a"u8));
        Assert.False(Table.Delete("never"u8));
        Assert.Null(Get("a"));
        Assert.Equal("2", Get("b"));
        Assert.Equal(1, TotalCount());
    }

    [Fact]
    public void Lookups_probe_past_a_tombstone()
    {
        // Three keys with the same first slot: they sit at slots s, s+1 and s+2 of their partition.
        string[] keys = KeysStartingAt(partition: 3, slot: 5, slotsPerPartition: 8).Take(3).ToArray();
        foreach (string key in keys)
            Table.Set(Bytes(key), Bytes(key + "!"));
        Assert.True(Table.Delete(Bytes(keys[0])));
        Assert.Equal(keys[1] + "!", Get(keys[1]));
        Assert.Equal(keys[2] + "!", Get(keys[2]));
        Assert.True(Table.Delete(Bytes(keys[1])));
        Assert.Equal(keys[2] + "!", Get(keys[2]));
        Assert.Equal(1, Table.Count(3));
    }

    [Fact]
    public void An_insert_reuses_a_tombstone_when_the_partition_has_no_empty_slot()
    {
        _memory = SmallTable(slotsPerPartition: 4);
        string[] keys = KeysIn(partition: 0).Take(6).ToArray();
        for (int i = 0; i < 4; i++)
            Assert.Equal(KvStatus.Ok, Table.Set(Bytes(keys[i]), "v"u8));
        Assert.Equal(KvStatus.TableFull, Table.Set(Bytes(keys[4]), "v"u8));
        Assert.True(Table.Delete(Bytes(keys[1])));
        Assert.Equal(KvStatus.Ok, Table.Set(Bytes(keys[4]), "v"u8));
        Assert.Equal(KvStatus.TableFull, Table.Set(Bytes(keys[5]), "v"u8));
        foreach (string key in keys.Where((_, i) => i != 1 && i != 5))
            Assert.Equal("v", Get(key));
    }

    [Fact]
    public void Tombstones_just_before_an_empty_slot_become_empty_again()
    {
        string[] chain = KeysStartingAt(partition: 0, slot: 0, slotsPerPartition: 8).Take(2).ToArray(); // slots 0 and 1
        string apart = KeysStartingAt(partition: 0, slot: 5, slotsPerPartition: 8).First();              // slot 5
        foreach (string key in chain.Append(apart))
            Table.Set(Bytes(key), "v"u8);
        Assert.True(Table.Delete(Bytes(chain[0]))); // slot 1 follows, live: the tombstone stays
        Assert.Equal((3, 2), Counts(partition: 0)); // (used, live)
        Assert.True(Table.Delete(Bytes(chain[1]))); // slot 2 follows, empty: slots 1 and 0 become empty
        Assert.Equal((1, 1), Counts(partition: 0));
        Assert.True(Table.Delete(Bytes(apart)));
        Assert.Equal((0, 0), Counts(partition: 0));
    }

    [Fact]
    public void Inserting_and_deleting_for_ever_never_fills_a_partition()
    {
        _memory = SmallTable(slotsPerPartition: 4);
        string[] keys = KeysIn(partition: 7).Take(1003).ToArray();
        for (int i = 0; i < 3; i++)
            Table.Set(Bytes(keys[i]), "resident"u8);
        for (int i = 3; i < keys.Length; i++)
        {
            Assert.Equal(KvStatus.Ok, Table.Set(Bytes(keys[i]), "passing"u8));
            Assert.True(Table.Delete(Bytes(keys[i])));
        }
        for (int i = 0; i < 3; i++)
            Assert.Equal("resident", Get(keys[i]));
        Assert.Equal(3, Table.Count(7));
    }

    [Fact]
    public void A_full_partition_refuses_new_keys_only()
    {
        _memory = SmallTable(slotsPerPartition: 2);
        string[] keys = KeysIn(partition: 0).Take(3).ToArray();
        Table.Set(Bytes(keys[0]), "1"u8);
        Table.Set(Bytes(keys[1]), "2"u8);
        Assert.Equal(KvStatus.TableFull, Table.Set(Bytes(keys[2]), "3"u8));
        Assert.Equal(KvStatus.TableFull, Table.Increment(Bytes(keys[2]), out _));
        Assert.Equal(KvStatus.Ok, Table.Set(Bytes(keys[0]), "replaced"u8));
        Assert.Equal(KvStatus.Ok, Table.Set(Bytes(KeysIn(partition: 1).First()), "elsewhere"u8));
        Assert.Null(Get(keys[2]));
        Assert.Equal("replaced", Get(keys[0]));
    }

    [Fact]
    public void Enforces_the_key_and_value_limits()
    {
        string longestKey = new('k', KvTable.MaxKeyLength);
        string tooLongKey = new('k', KvTable.MaxKeyLength + 1);
        Assert.Equal(KvStatus.Ok, Table.Set(Bytes(longestKey), new byte[KvTable.MaxValueLength]));
        Assert.Equal(KvStatus.KeyTooLarge, Table.Set(Bytes(tooLongKey), "v"u8));
        Assert.Equal(KvStatus.ValueTooLarge, Table.Set(Bytes(longestKey), new byte[KvTable.MaxValueLength + 1]));
        Assert.Equal(KvStatus.KeyTooLarge, Table.Increment(Bytes(tooLongKey), out _));
        Assert.Equal(KvTable.MaxValueLength, Get(longestKey)!.Length); // the refused value left the old one
        Assert.False(Table.Contains(Bytes(tooLongKey)));
        Assert.False(Table.Delete(Bytes(tooLongKey)));
        Assert.Equal(1, TotalCount());
    }

    [Fact]
    public void Increment_counts_from_zero_and_stores_decimal_text()
    {
        Assert.Equal(KvStatus.Ok, Table.Increment("n"u8, out long value));
        Assert.Equal(1, value);
        Table.Set("n"u8, "41"u8);
        Table.Increment("n"u8, out value);
        Assert.Equal(42, value);
        Assert.Equal("42", Get("n"));
        Table.Set("m"u8, "-1"u8);
        Table.Increment("m"u8, out value);
        Assert.Equal(0, value);
        Table.Set("big"u8, "9223372036854775806"u8);
        Table.Increment("big"u8, out value);
        Assert.Equal(long.MaxValue, value);
        Assert.Equal(KvStatus.Overflow, Table.Increment("big"u8, out _));
        Assert.Equal("9223372036854775807", Get("big"));
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("")]
    [InlineData(" 1")]
    [InlineData("1 ")]
    [InlineData("+1")]
    [InlineData("01")]
    [InlineData("-0")]
    [InlineData("1.5")]
    [InlineData("9223372036854775808")]
    public void Increment_refuses_a_value_that_is_not_a_canonical_integer(string stored)
    {
        Table.Set("n"u8, Bytes(stored));
        Assert.Equal(KvStatus.NotAnInteger, Table.Increment("n"u8, out _));
        Assert.Equal(stored, Get("n"));
    }

    [Fact]
    public void Counts_keys_per_partition()
    {
        for (int i = 0; i < 100; i++)
            Table.Set(Bytes($"key:{i}"), "v"u8);
        Assert.Equal(100, TotalCount());
        Assert.All(Enumerable.Range(0, KvTable.PartitionCount), p => Assert.True(Table.Count(p) > 0, $"partition {p} is empty"));
        Assert.Throws<ArgumentOutOfRangeException>(() => KvTable.Attach(_memory).Count(KvTable.PartitionCount));
    }

    [Fact]
    public void The_hash_is_FNV_1a_in_every_process()
    {
        Assert.Equal(2166136261u, KvTable.HashOf(""u8));
        Assert.Equal(0xE40C292Cu, KvTable.HashOf("a"u8));
        Assert.Equal((int)(0xE40C292Cu % KvTable.PartitionCount), KvTable.PartitionOf("a"u8));
    }

    [Fact]
    public void The_default_size_holds_about_61000_keys()
    {
        var table = KvTable.Format(new byte[KvServer.DefaultTableSize]);
        Assert.Equal(3826, table.SlotsPerPartition);
        Assert.Equal(61216, table.Capacity);
    }

    [Fact]
    public void Format_refuses_memory_smaller_than_one_slot_per_partition()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => KvTable.Format(new byte[KvTable.MinSize - 1]));
        Assert.Equal(1, KvTable.Format(new byte[KvTable.MinSize]).SlotsPerPartition);
    }

    [Fact]
    public void Attach_rejects_memory_that_was_never_formatted()
    {
        var e = Assert.Throws<ShmemCorruptException>(() => KvTable.Attach(new byte[KvTable.MinSize]));
        Assert.Equal("key-value table is corrupt", e.Message);
        Assert.Contains("magic number 0x00000000", e.Detail);
        Assert.Throws<ShmemCorruptException>(() => KvTable.Attach(new byte[10]));
    }

    [Fact]
    public void Attach_rejects_another_layout_version()
    {
        Header.LayoutVersion++;
        var e = Assert.Throws<ShmemCorruptException>(() => KvTable.Attach(_memory));
        Assert.Contains("layout version 2, expected 1", e.Detail);
    }

    [Fact]
    public void Attach_rejects_a_size_other_than_the_formatted_one()
    {
        var e = Assert.Throws<ShmemCorruptException>(() => KvTable.Attach(_memory.AsSpan(0, _memory.Length - 8)));
        Assert.Contains("differs from the mapped size", e.Detail);
    }

    [Fact]
    public void Attach_rejects_another_geometry()
    {
        Header.SlotSize = 512;
        Assert.Contains("geometry", Assert.Throws<ShmemCorruptException>(() => KvTable.Attach(_memory)).Detail);
        Header.SlotSize = KvTable.SlotSize;
        Header.SlotsPerPartition = 1_000_000;
        Assert.Contains("do not fit", Assert.Throws<ShmemCorruptException>(() => KvTable.Attach(_memory)).Detail);
    }

    [Fact]
    public void A_lookup_rejects_a_slot_in_an_unknown_state()
    {
        string key = KeysStartingAt(partition: 0, slot: 0, slotsPerPartition: 8).First();
        _memory[KvTable.HeaderSize + KvTable.PartitionHeaderSize] = 7; // slot 0 of partition 0: its state byte
        var e = Assert.Throws<ShmemCorruptException>(() => KvTable.Attach(_memory).Contains(Bytes(key)));
        Assert.Contains("slot 0 is in state 7", e.Detail);
    }

    [Fact]
    public void A_lookup_rejects_impossible_partition_counts()
    {
        MemoryMarshal.AsRef<PartitionHeader>(_memory.AsSpan(KvTable.HeaderSize)).Live = 5; // more live than used
        var e = Assert.Throws<ShmemCorruptException>(() => KvTable.Attach(_memory).Contains(Bytes(KeysIn(partition: 0).First())));
        Assert.Contains("partition 0 counts 5 live and 0 used slots of 8", e.Detail);
    }

    /// <summary>A zeroed, formatted table with this many slots in each partition.</summary>
    private static byte[] SmallTable(int slotsPerPartition)
    {
        var memory = new byte[KvTable.HeaderSize + KvTable.PartitionCount * (KvTable.PartitionHeaderSize + slotsPerPartition * KvTable.SlotSize)];
        Assert.Equal(slotsPerPartition, KvTable.Format(memory).SlotsPerPartition);
        return memory;
    }

    private ref TableHeader Header => ref MemoryMarshal.AsRef<TableHeader>(_memory.AsSpan());

    private (int Used, int Live) Counts(int partition)
    {
        var header = MemoryMarshal.AsRef<PartitionHeader>(_memory.AsSpan(KvTable.HeaderSize
            + partition * (KvTable.PartitionHeaderSize + Table.SlotsPerPartition * KvTable.SlotSize)));
        return (header.Used, header.Live);
    }

    private static IEnumerable<string> KeysIn(int partition) =>
        Enumerable.Range(0, int.MaxValue).Select(i => $"key:{i}").Where(k => KvTable.PartitionOf(Bytes(k)) == partition);

    /// <summary>Keys of <paramref name="partition"/> whose probe starts at <paramref name="slot"/>.</summary>
    private static IEnumerable<string> KeysStartingAt(int partition, int slot, int slotsPerPartition) =>
        KeysIn(partition).Where(k => KvTable.HashOf(Bytes(k)) / KvTable.PartitionCount % (uint)slotsPerPartition == slot);

    private string? Get(string key) => Table.TryGet(Bytes(key), out var value) ? Encoding.Latin1.GetString(value) : null;

    private int TotalCount() => Enumerable.Range(0, KvTable.PartitionCount).Sum(p => KvTable.Attach(_memory).Count(p));

    private static byte[] Bytes(string text) => Encoding.Latin1.GetBytes(text);
}
