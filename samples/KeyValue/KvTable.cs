using System.Buffers.Text;
using System.Runtime.InteropServices;
using Postmaster.Shmem.Errors;

namespace KeyValue;

/// <summary>
/// A fixed-size hash table of byte-string keys and values over a block of memory: in the server, a named DSM segment
/// shared by every backend process (<see cref="SharedKvStorage"/>); in the tests, a byte array. The memory holds
/// offsets only (layout in KvTableLayout.cs), so every process can map it at its own address.
/// <para><b>Overview.</b> The table is split into <see cref="PartitionCount"/> partitions, each with its own lock: a
/// key's partition is <see cref="PartitionOf"/>, and every operation on a key touches that partition only. Inside a
/// partition, open addressing with linear probing over fixed-size slots; deleting leaves a tombstone that lookups probe
/// past and inserts reuse, and tombstones just before an empty slot are turned back into empty slots.</para>
/// <para><b>Limits.</b> Keys of at most <see cref="MaxKeyLength"/> bytes, values of at most
/// <see cref="MaxValueLength"/> bytes, <see cref="SlotsPerPartition"/> keys per partition (about 3,800 per partition
/// and 61,000 in all for 64 MiB). The table is full for a new key when that key's partition is.</para>
/// <para><b>Locking.</b> The table takes no locks: the caller holds the key's partition lock, shared for reads and
/// exclusive for writes, for as long as it uses the table or a span it returned. A process that dies holding one makes
/// the postmaster rebuild shared memory, so a half-written slot is never seen.</para>
/// <para><b>Validation.</b> <see cref="Attach"/> checks the header (magic, layout version, size, geometry) before
/// anything is read; slots are checked as they are read. Failures are <see cref="ShmemCorruptException"/>s, which make
/// the postmaster rebuild shared memory when they escape the worker.</para>
/// </summary>
public readonly ref struct KvTable
{
    /// <summary>Number of partitions (and of locks).</summary>
    public const int PartitionCount = 16;

    /// <summary>Longest key in bytes.</summary>
    public const int MaxKeyLength = 64;

    /// <summary>Longest value in bytes.</summary>
    public const int MaxValueLength = 1024;

    /// <summary>Smallest table: the header and one slot per partition.</summary>
    public const long MinSize = HeaderSize + PartitionCount * (PartitionHeaderSize + SlotSize);

    /// <summary>Largest table (the memory is one span, and a span's length is an int).</summary>
    public const long MaxSize = 1L << 30;

    internal const int HeaderSize = 64;
    internal const int PartitionHeaderSize = 64;
    internal const int SlotHeaderSize = 8;
    internal const int SlotSize = SlotHeaderSize + MaxKeyLength + MaxValueLength; // 1096, a multiple of 8

    private readonly Span<byte> _memory;
    private readonly int _slotsPerPartition;

    private KvTable(Span<byte> memory, int slotsPerPartition)
    {
        _memory = memory;
        _slotsPerPartition = slotsPerPartition;
    }

    /// <summary>Keys each partition can hold.</summary>
    public int SlotsPerPartition => _slotsPerPartition;

    /// <summary>Keys the table can hold when they spread evenly.</summary>
    public int Capacity => _slotsPerPartition * PartitionCount;

    /// <summary>Lays out an empty table in <paramref name="memory"/>, which must be zeroed (a new DSM segment and a new
    /// array are). Runs once, before any other process sees the memory.</summary>
    /// <param name="memory">The whole table: <see cref="MinSize"/> to <see cref="MaxSize"/> bytes.</param>
    /// <returns>The table.</returns>
    public static KvTable Format(Span<byte> memory)
    {
        if (memory.Length < MinSize || memory.Length > MaxSize)
            throw new ArgumentOutOfRangeException(nameof(memory), memory.Length,
                $"a key-value table takes {MinSize} to {MaxSize} bytes");
        ref var header = ref MemoryMarshal.AsRef<TableHeader>(memory);
        header.Magic = TableHeader.ExpectedMagic;
        header.LayoutVersion = TableHeader.CurrentLayoutVersion;
        header.Size = memory.Length;
        header.PartitionCount = PartitionCount;
        header.SlotsPerPartition = (int)((memory.Length - HeaderSize) / PartitionCount - PartitionHeaderSize) / SlotSize;
        header.SlotSize = SlotSize;
        header.MaxKeyLength = MaxKeyLength;
        header.MaxValueLength = MaxValueLength;
        return Attach(memory);
    }

    /// <summary>The table <see cref="Format"/> laid out in <paramref name="memory"/>, after checking its header.</summary>
    /// <param name="memory">The whole table, as formatted.</param>
    /// <returns>The table.</returns>
    /// <exception cref="ShmemCorruptException">The header is not that of a table of this layout and size.</exception>
    public static KvTable Attach(Span<byte> memory)
    {
        if (memory.Length < HeaderSize)
            throw Corrupt($"the memory is {memory.Length} bytes, less than the header's {HeaderSize}");
        var header = MemoryMarshal.AsRef<TableHeader>(memory);
        if (header.Magic != TableHeader.ExpectedMagic)
            throw Corrupt($"magic number 0x{header.Magic:X8}, expected 0x{TableHeader.ExpectedMagic:X8}");
        if (header.LayoutVersion != TableHeader.CurrentLayoutVersion)
            throw Corrupt($"layout version {header.LayoutVersion}, expected {TableHeader.CurrentLayoutVersion}");
        if (header.Size != memory.Length)
            throw Corrupt($"header size {header.Size} differs from the mapped size {memory.Length}");
        if (header.PartitionCount != PartitionCount || header.SlotSize != SlotSize
            || header.MaxKeyLength != MaxKeyLength || header.MaxValueLength != MaxValueLength)
            throw Corrupt($"geometry {header.PartitionCount} partitions, {header.SlotSize}-byte slots, keys {header.MaxKeyLength}, "
                + $"values {header.MaxValueLength}; expected {PartitionCount}, {SlotSize}, {MaxKeyLength}, {MaxValueLength}");
        if (header.SlotsPerPartition < 1 || HeaderSize + (long)PartitionCount * PartitionBytes(header.SlotsPerPartition) > memory.Length)
            throw Corrupt($"{header.SlotsPerPartition} slots per partition do not fit in {memory.Length} bytes");
        return new KvTable(memory, header.SlotsPerPartition);
    }

    /// <summary>The partition that holds <paramref name="key"/>: the index of the lock to hold while using it.</summary>
    /// <param name="key">Any key (also one too long to store).</param>
    public static int PartitionOf(ReadOnlySpan<byte> key) => (int)(HashOf(key) % PartitionCount);

    /// <summary>Looks <paramref name="key"/> up.</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value, in the table's memory: copy it out before releasing the partition lock.</param>
    /// <returns>False when the key is absent.</returns>
    public bool TryGet(ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value)
    {
        int slot = Find(key, HashOf(key), out _);
        value = slot < 0 ? default : ValueOf(slot);
        return slot >= 0;
    }

    /// <summary>True when <paramref name="key"/> is present.</summary>
    /// <param name="key">The key.</param>
    public bool Contains(ReadOnlySpan<byte> key) => Find(key, HashOf(key), out _) >= 0;

    /// <summary>Stores <paramref name="value"/> under <paramref name="key"/>, replacing any value it had.</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    /// <returns><see cref="KvStatus.Ok"/>, or why nothing changed.</returns>
    public KvStatus Set(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        if (key.Length > MaxKeyLength)
            return KvStatus.KeyTooLarge;
        if (value.Length > MaxValueLength)
            return KvStatus.ValueTooLarge;
        uint hash = HashOf(key);
        int slot = Find(key, hash, out int free);
        if (slot < 0)
        {
            if (free < 0)
                return KvStatus.TableFull;
            slot = free;
            Insert(slot, hash, key);
        }
        WriteValue(slot, value);
        return KvStatus.Ok;
    }

    /// <summary>Removes <paramref name="key"/>.</summary>
    /// <param name="key">The key.</param>
    /// <returns>False when it was absent.</returns>
    public bool Delete(ReadOnlySpan<byte> key)
    {
        int slot = Find(key, HashOf(key), out _);
        if (slot < 0)
            return false;
        int first = FirstSlotOf(slot);
        ref var partition = ref PartitionHeaderOf(slot / _slotsPerPartition);
        SlotHeaderOf(slot).State = SlotState.Tombstone;
        partition.Live--;
        // A probe stops at an empty slot, so no lookup needs the tombstones just before one: empty them, walking back.
        if (SlotHeaderOf(Next(slot, first)).State != SlotState.Empty)
            return true;
        for (int i = slot; SlotHeaderOf(i).State == SlotState.Tombstone && partition.Used > partition.Live; i = Previous(i, first))
        {
            SlotHeaderOf(i).State = SlotState.Empty;
            partition.Used--;
        }
        return true;
    }

    /// <summary>Adds one to the integer stored under <paramref name="key"/> (0 when absent), as Redis's INCR.</summary>
    /// <param name="key">The key.</param>
    /// <param name="result">The new value, when the status is <see cref="KvStatus.Ok"/>.</param>
    /// <returns><see cref="KvStatus.Ok"/>, or why nothing changed.</returns>
    public KvStatus Increment(ReadOnlySpan<byte> key, out long result)
    {
        result = 0;
        if (key.Length > MaxKeyLength)
            return KvStatus.KeyTooLarge;
        uint hash = HashOf(key);
        int slot = Find(key, hash, out int free);
        long current = 0;
        if (slot >= 0 && !TryParseInteger(ValueOf(slot), out current))
            return KvStatus.NotAnInteger;
        if (current == long.MaxValue)
            return KvStatus.Overflow;
        if (slot < 0)
        {
            if (free < 0)
                return KvStatus.TableFull;
            slot = free;
            Insert(slot, hash, key);
        }
        result = current + 1;
        Span<byte> text = stackalloc byte[20]; // the longest long, "-9223372036854775808"
        result.TryFormat(text, out int length, provider: System.Globalization.CultureInfo.InvariantCulture);
        WriteValue(slot, text[..length]);
        return KvStatus.Ok;
    }

    /// <summary>Keys stored in <paramref name="partition"/> (hold its lock).</summary>
    /// <param name="partition">0 .. <see cref="PartitionCount"/>-1.</param>
    public int Count(int partition)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(partition, PartitionCount);
        return PartitionHeaderOf(partition).Live;
    }

    /// <summary>FNV-1a, 32 bits: the same in every process (unlike <see cref="string.GetHashCode()"/>).</summary>
    internal static uint HashOf(ReadOnlySpan<byte> key)
    {
        uint hash = 2166136261;
        foreach (byte b in key)
            hash = (hash ^ b) * 16777619;
        return hash;
    }

    /// <summary>The slot holding <paramref name="key"/>, or -1. <paramref name="free"/> is where it would be inserted:
    /// the first tombstone or empty slot of its probe sequence, or -1 when the partition has neither.</summary>
    private int Find(ReadOnlySpan<byte> key, uint hash, out int free)
    {
        free = -1;
        if (key.Length > MaxKeyLength)
            return -1; // never stored
        int partition = (int)(hash % PartitionCount);
        int first = partition * _slotsPerPartition;
        CheckCounts(partition);
        int slot = first + (int)(hash / PartitionCount % (uint)_slotsPerPartition);
        for (int probes = 0; probes < _slotsPerPartition; probes++, slot = Next(slot, first))
        {
            var header = SlotHeaderOf(slot);
            switch (header.State)
            {
                case SlotState.Empty:
                    if (free < 0)
                        free = slot;
                    return -1;
                case SlotState.Tombstone:
                    if (free < 0)
                        free = slot;
                    break;
                case SlotState.Live:
                    if (header.KeyLength > MaxKeyLength || header.ValueLength > MaxValueLength)
                        throw Corrupt($"slot {slot} has a {header.KeyLength}-byte key and a {header.ValueLength}-byte value");
                    if (header.Hash == hash && KeyOf(slot, header.KeyLength).SequenceEqual(key))
                        return slot;
                    break;
                default:
                    throw Corrupt($"slot {slot} is in state {(byte)header.State}");
            }
        }
        return -1;
    }

    /// <summary>Makes <paramref name="slot"/> (empty or a tombstone) live with <paramref name="key"/>; the caller
    /// writes the value.</summary>
    private void Insert(int slot, uint hash, ReadOnlySpan<byte> key)
    {
        ref var partition = ref PartitionHeaderOf(slot / _slotsPerPartition);
        ref var header = ref SlotHeaderOf(slot);
        if (header.State == SlotState.Empty)
            partition.Used++;
        partition.Live++;
        key.CopyTo(KeyOf(slot, key.Length));
        header.KeyLength = (byte)key.Length;
        header.Hash = hash;
        header.State = SlotState.Live;
    }

    private void WriteValue(int slot, ReadOnlySpan<byte> value)
    {
        value.CopyTo(_memory.Slice(ValueOffset(slot), value.Length));
        SlotHeaderOf(slot).ValueLength = (ushort)value.Length;
    }

    private void CheckCounts(int partition)
    {
        var header = PartitionHeaderOf(partition);
        if (header.Live < 0 || header.Live > header.Used || header.Used > _slotsPerPartition)
            throw Corrupt($"partition {partition} counts {header.Live} live and {header.Used} used slots of {_slotsPerPartition}");
    }

    /// <summary>Redis's rule: the canonical decimal form of a 64-bit integer (no sign '+', spaces or leading zeros).</summary>
    private static bool TryParseInteger(ReadOnlySpan<byte> text, out long value)
    {
        Span<byte> canonical = stackalloc byte[20];
        return Utf8Parser.TryParse(text, out value, out int used) && used == text.Length
            && value.TryFormat(canonical, out int length, provider: System.Globalization.CultureInfo.InvariantCulture)
            && canonical[..length].SequenceEqual(text);
    }

    private static int PartitionBytes(int slotsPerPartition) => PartitionHeaderSize + slotsPerPartition * SlotSize;

    private int FirstSlotOf(int slot) => slot - slot % _slotsPerPartition;

    private int Next(int slot, int first) => slot + 1 == first + _slotsPerPartition ? first : slot + 1;

    private int Previous(int slot, int first) => slot == first ? first + _slotsPerPartition - 1 : slot - 1;

    private int PartitionOffset(int partition) => HeaderSize + partition * PartitionBytes(_slotsPerPartition);

    private int SlotOffset(int slot) =>
        PartitionOffset(slot / _slotsPerPartition) + PartitionHeaderSize + slot % _slotsPerPartition * SlotSize;

    private int ValueOffset(int slot) => SlotOffset(slot) + SlotHeaderSize + MaxKeyLength;

    private ref PartitionHeader PartitionHeaderOf(int partition) =>
        ref MemoryMarshal.AsRef<PartitionHeader>(_memory.Slice(PartitionOffset(partition), PartitionHeaderSize));

    private ref SlotHeader SlotHeaderOf(int slot) =>
        ref MemoryMarshal.AsRef<SlotHeader>(_memory.Slice(SlotOffset(slot), SlotHeaderSize));

    private Span<byte> KeyOf(int slot, int length) => _memory.Slice(SlotOffset(slot) + SlotHeaderSize, length);

    private Span<byte> ValueOf(int slot) => _memory.Slice(ValueOffset(slot), SlotHeaderOf(slot).ValueLength);

    private static ShmemCorruptException Corrupt(string detail) =>
        new("key-value table is corrupt", detail);
}
