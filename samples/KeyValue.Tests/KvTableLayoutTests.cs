using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Xunit;

namespace KeyValue.Tests;

/// <summary>Pins the shared-memory layout: a change here must bump <see cref="TableHeader.CurrentLayoutVersion"/>.</summary>
public sealed class KvTableLayoutTests
{
    [Fact]
    public void Structs_have_their_documented_sizes()
    {
        Assert.Equal(64, Unsafe.SizeOf<TableHeader>());
        Assert.Equal(64, Unsafe.SizeOf<PartitionHeader>());
        Assert.Equal(8, Unsafe.SizeOf<SlotHeader>());
        Assert.Equal(1, Unsafe.SizeOf<SlotState>());
        Assert.Equal(8 + 64 + 1024, KvTable.SlotSize);
        Assert.Equal(0, KvTable.SlotSize % 8); // every slot header stays 8-byte aligned
    }

    [Theory]
    [InlineData(nameof(TableHeader.Magic), 0)]
    [InlineData(nameof(TableHeader.LayoutVersion), 4)]
    [InlineData(nameof(TableHeader.Size), 8)]
    [InlineData(nameof(TableHeader.PartitionCount), 16)]
    [InlineData(nameof(TableHeader.SlotsPerPartition), 20)]
    [InlineData(nameof(TableHeader.SlotSize), 24)]
    [InlineData(nameof(TableHeader.MaxKeyLength), 28)]
    [InlineData(nameof(TableHeader.MaxValueLength), 32)]
    public void Table_header_fields_are_at_their_offsets(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<TableHeader>(field));

    [Theory]
    [InlineData(nameof(SlotHeader.State), 0)]
    [InlineData(nameof(SlotHeader.KeyLength), 1)]
    [InlineData(nameof(SlotHeader.ValueLength), 2)]
    [InlineData(nameof(SlotHeader.Hash), 4)]
    public void Slot_header_fields_are_at_their_offsets(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<SlotHeader>(field));

    [Fact]
    public void Partition_header_fields_are_at_their_offsets()
    {
        Assert.Equal(0, (int)Marshal.OffsetOf<PartitionHeader>(nameof(PartitionHeader.Live)));
        Assert.Equal(4, (int)Marshal.OffsetOf<PartitionHeader>(nameof(PartitionHeader.Used)));
    }
}
