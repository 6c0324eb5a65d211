using System.Runtime.InteropServices;

namespace KeyValue;

// The shared-memory layout of the key-value table. Every process maps the segment at its own address, so the layout
// holds offsets only (computed from the header's counts), never addresses. Layout changes bump
// TableHeader.CurrentLayoutVersion; KvTableLayoutTests pins the sizes and offsets.
//
//   offset 0                 TableHeader (64 bytes)
//   64 + p * PartitionBytes  partition p, p = 0 .. PartitionCount-1:
//                              PartitionHeader (64 bytes)
//                              SlotsPerPartition slots of SlotSize bytes: SlotHeader (8), key (MaxKeyLength),
//                              value (MaxValueLength)
//   the rest                 unused (less than one partition)

/// <summary>At offset 0 of the table. Written once by <see cref="KvTable.Format"/> before any other process can see
/// the segment; immutable afterwards, so read without a lock.</summary>
[StructLayout(LayoutKind.Explicit, Size = KvTable.HeaderSize)]
internal struct TableHeader
{
    /// <summary>"KVTB": unlike zeroed or random memory.</summary>
    public const uint ExpectedMagic = 0x4B56_5442;

    /// <summary>Bumped by any change of the layout.</summary>
    public const uint CurrentLayoutVersion = 1;

    [FieldOffset(0)] public uint Magic;
    [FieldOffset(4)] public uint LayoutVersion;
    [FieldOffset(8)] public long Size;              // bytes of the whole table, header included
    [FieldOffset(16)] public int PartitionCount;    // KvTable.PartitionCount
    [FieldOffset(20)] public int SlotsPerPartition; // 1 or more
    [FieldOffset(24)] public int SlotSize;          // KvTable.SlotSize
    [FieldOffset(28)] public int MaxKeyLength;      // KvTable.MaxKeyLength
    [FieldOffset(32)] public int MaxValueLength;    // KvTable.MaxValueLength
}

/// <summary>At the start of each partition. Protected by: the partition's lock (<c>keyvalue.N</c>).</summary>
[StructLayout(LayoutKind.Explicit, Size = KvTable.PartitionHeaderSize)]
internal struct PartitionHeader
{
    [FieldOffset(0)] public int Live; // slots in state Live
    [FieldOffset(4)] public int Used; // slots in state Live or Tombstone (not Empty); Live <= Used <= SlotsPerPartition
}

/// <summary>At the start of each slot, followed by the key and the value bytes. Protected by: the partition's lock.</summary>
[StructLayout(LayoutKind.Explicit, Size = KvTable.SlotHeaderSize)]
internal struct SlotHeader
{
    [FieldOffset(0)] public SlotState State;
    [FieldOffset(1)] public byte KeyLength;     // 0 .. MaxKeyLength
    [FieldOffset(2)] public ushort ValueLength; // 0 .. MaxValueLength
    [FieldOffset(4)] public uint Hash;          // KvTable.HashOf(key): compared before the key bytes
}

/// <summary>What a slot holds. A lookup stops at the first <see cref="Empty"/> slot and probes on past a
/// <see cref="Tombstone"/>, so deleting a key never hides the keys stored after it.</summary>
internal enum SlotState : byte
{
    Empty = 0,     // never used, or a tombstone no probe needs any more
    Live = 1,      // holds a key and its value
    Tombstone = 2, // held a key that was deleted; reused by the next insert that probes past it
}
