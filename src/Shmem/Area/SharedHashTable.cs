using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Locks;

namespace Postmaster.Shmem.Area;

/// <summary>
/// Header of a <see cref="SharedHashTable"/>'s control block (a block of its area). ABI: any layout change bumps
/// <see cref="CurrentLayoutVersion"/>. Immutable after creation except <see cref="SizeLog2"/>, <see cref="Buckets"/>
/// <see cref="Generation"/> and <see cref="Resizes"/> (protected by: every partition lock, exclusively) and
/// <see cref="Destroyed"/>.
/// Followed by <see cref="HashTablePartition"/>s.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct HashTableHeader
{
    public const int Size = 64;
    public const uint ExpectedMagic = 0x5448_4D50; // "PMHT" little-endian
    public const uint CurrentLayoutVersion = 3; // 2: partition versions for lock-free readers; 3: inline bucket slots, generation, one-round 8-byte hash

    [FieldOffset(0)] public uint Magic;
    [FieldOffset(4)] public uint LayoutVersion;
    [FieldOffset(8)] public long StructSize;     // header and partitions
    [FieldOffset(16)] public int KeySize;        // bytes of every key; 0: keys of 1..MaxKeyLength bytes
    [FieldOffset(20)] public int Partitions;     // = SharedHashTable.PartitionCount when written
    [FieldOffset(24)] public int SizeLog2;       // buckets = 1 << SizeLog2; never below log2(Partitions)
    [FieldOffset(28)] public int TrancheId;      // the partition locks' tranche
    [FieldOffset(32)] public ulong Buckets;      // area pointer to the slots: (1 << SizeLog2) of (1 << SlotShift) bytes
    [FieldOffset(40)] public int MaxKeyLength;
    [FieldOffset(44)] public int Destroyed;      // 1 once destroyed
    [FieldOffset(48)] public long Generation;    // +1 at every resize and at destroy: a cached bucket array is current while unchanged
    [FieldOffset(56)] public int Resizes;        // times the bucket array doubled
    [FieldOffset(60)] public int SlotShift;      // log2 of a bucket slot's bytes: 3 (a chain pointer) or 6 (and 3 inline entries)
}

/// <summary>One partition: its lock, its item count and its version, two cache lines so that partitions never share
/// one. Protected by: <see cref="Lock"/> (written only with it held exclusively). <see cref="Version"/> is a sequence
/// lock for readers that take no lock: odd while a writer changes the partition's chains or values.</summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct HashTablePartition
{
    public const int Size = 128;

    [FieldOffset(0)] public LWLock Lock;
    [FieldOffset(64)] public long Count;
    [FieldOffset(72)] public long Version;
}

/// <summary>
/// A concurrent hash table in a <see cref="SharedArea"/> (PostgreSQL's dshash.c): byte keys (all of one size, or of
/// any size up to <see cref="MaxKeyLength"/>) and values of any size, chained from a bucket array. The table is split
/// in <see cref="PartitionCount"/> partitions by the hash's top bits, each with its own LWLock; a bucket always belongs
/// to one partition (the bucket index is the hash's top <c>SizeLog2</c> bits), so operations on different partitions
/// never contend. Reads take no lock at all when they can: they walk the chain optimistically and keep the result only
/// if the partition's <see cref="HashTablePartition.Version"/> did not change meanwhile (a sequence lock; every pointer
/// is bounds-checked and every walk bounded, so reading memory a writer is changing or has freed is harmless), falling
/// back to the shared partition lock after a few attempts. A read thus never writes shared memory and never issues an
/// atomic instruction, which is what lets misses of successive reads overlap. When a partition holds more than three
/// quarters of its bucket count, the table doubles its bucket array while holding every partition lock (PostgreSQL's
/// resize: rare, and proportional to the items).
/// <para><b>Slots.</b> A table of fixed keys of at most <see cref="InlineKeyMax"/> bytes has bucket slots of one
/// cache line, 64 bytes: <c>[chain 8][3 × value length + 1, 0 = empty: 1 each][5 zero][3 × (key zero-padded 8, value
/// 8)]</c>, so that up to three keys per bucket with values of at most <see cref="InlineValueMax"/> bytes live in the
/// bucket array itself (a find is one cache miss, not two); other keys of the bucket are chained items. Such a table
/// doubles at 1.5 keys per bucket (half its inline capacity) rather than 0.75. Other tables have 8-byte slots (the
/// chain only).</para>
/// <para><b>Item.</b> <c>[next 8][hash 4][key length 4][value length 4][value capacity 4][key, padded to 8][value]</c>, one
/// area block. A value is rewritten in place when the new one fits the item's block, otherwise the item is replaced.</para>
/// <para><b>Crash semantics.</b> Every operation runs under its partition's lock (and takes the area lock to allocate
/// or free), so a process killed inside one makes the supervisor restart the instance; killed between operations, it
/// is reconciled and the table stays consistent. An in-place update runs the caller's code under the lock: a death
/// there is a restart too.</para>
/// <para><b>Threads.</b> Safe from any thread (locks are per thread); not re-entrant: code run under a partition lock
/// (an update callback) must not call the table.</para>
/// </summary>
internal sealed unsafe class SharedHashTable
{
    public const int PartitionCount = 128;
    public const int PartitionBits = 7;
    public const int DefaultMaxKeyLength = 1024;
    public const string TrancheName = "SharedHashTable";

    /// <summary>Item header bytes before the key.</summary>
    public const int ItemHeaderSize = 24;

    /// <summary>Fixed keys of at most this many bytes get inline bucket slots.</summary>
    public const int InlineKeyMax = 8;

    /// <summary>Values of at most this many bytes can live in an inline bucket slot.</summary>
    public const int InlineValueMax = 8;

    /// <summary>Bytes of an inline bucket slot (a cache line).</summary>
    public const int InlineSlotSize = 64;

    /// <summary>Entries of an inline bucket slot.</summary>
    public const int InlineEntries = 3;

    private const int PlainSlotShift = 3;
    private const int InlineSlotShift = 6;
    private const int SlotMetas = 8;     // inline slot: a byte per entry, 0 empty, else its value's length + 1
    private const int SlotEntries = 16;  // inline slot: entry i at 16 + 16 i, [key zero-padded to 8][value 8]
    private const int EntrySize = 16;

    private const int InitialSizeLog2 = 10;   // 1024 buckets, 8 per partition
    private const int MaxSizeLog2 = 26;       // 64 M 8-byte slots: a 512 MB bucket array (16 M inline slots)
    private const long ControlSize = HashTableHeader.Size + (long)PartitionCount * HashTablePartition.Size;

    private readonly SharedArea _area;
    private readonly LockOwner _owner;
    private readonly HashTableHeader* _header;
    private readonly HashTablePartition* _partitions;
    private readonly int* _areaDestroyed;
    private readonly LWLockHandle[] _locks = new LWLockHandle[PartitionCount];
    private readonly int _slotShift;
    private readonly bool _inline;
    private readonly int _maxSizeLog2;

    private SharedHashTable(SharedArea area, AreaPointer control)
    {
        _area = area;
        _owner = area.Owner;
        Pointer = control;
        var region = area.Region(control, ControlSize);
        string? problem = Validate(region);
        if (problem is not null)
            throw new ShmemCorruptException($"shared hash table {control} of {area} is not valid", problem);
        _header = (HashTableHeader*)region.Base;
        _partitions = (HashTablePartition*)(region.Base + HashTableHeader.Size);
        _areaDestroyed = area.DestroyedFlag;
        var segment = area.LockSegment(control);
        for (int i = 0; i < PartitionCount; i++)
            _locks[i] = segment.Lock(control.Offset + HashTableHeader.Size + (long)i * HashTablePartition.Size);
        KeySize = _header->KeySize;
        MaxKeyLength = _header->MaxKeyLength;
        _slotShift = _header->SlotShift;
        _inline = _slotShift == InlineSlotShift;
        _maxSizeLog2 = MaxLog2For(_slotShift);
    }

    /// <summary>Where the table's control block is in its area: give it to other processes (with the area's handle)
    /// to attach the table.</summary>
    public AreaPointer Pointer { get; }

    public SharedArea Area => _area;

    /// <summary>The worker SDK's object for this table, made on first use (the engine never reads it).</summary>
    internal object? Facade;

    /// <summary>Bytes of every key; 0 when keys have any length from 1 to <see cref="MaxKeyLength"/>.</summary>
    public int KeySize { get; }

    public int MaxKeyLength { get; }

    /// <summary>True when the bucket slots hold an entry each (fixed keys of at most <see cref="InlineKeyMax"/> bytes).</summary>
    public bool HasInlineSlots => _inline;

    /// <summary>Items now (the sum of the partitions' counts, read without locks).</summary>
    public long Count
    {
        get
        {
            CheckAttached();
            long total = 0;
            for (int i = 0; i < PartitionCount; i++)
                total += Volatile.Read(ref _partitions[i].Count);
            return total;
        }
    }

    /// <summary>Buckets now.</summary>
    public long BucketCount
    {
        get
        {
            CheckAttached();
            return 1L << Volatile.Read(ref _header->SizeLog2);
        }
    }

    /// <summary>Times the bucket array doubled.</summary>
    public long Resizes
    {
        get
        {
            CheckAttached();
            return Volatile.Read(ref _header->Resizes);
        }
    }

    /// <summary>Creates an empty table in <paramref name="area"/> (PostgreSQL's dshash_create). <paramref name="keySize"/>
    /// fixes every key's length; 0 allows any length from 1 to <paramref name="maxKeyLength"/>.</summary>
    public static SharedHashTable Create(SharedArea area, int keySize, int maxKeyLength = DefaultMaxKeyLength)
    {
        ArgumentNullException.ThrowIfNull(area);
        if (keySize < 0 || keySize > SharedArea.MaxAllocationSize / 2)
            throw new ArgumentOutOfRangeException(nameof(keySize), keySize, "the key size of a shared hash table must be 0 (any length) or a positive number of bytes");
        if (keySize == 0 && (maxKeyLength < 1 || maxKeyLength > 1 << 20))
            throw new ArgumentOutOfRangeException(nameof(maxKeyLength), maxKeyLength, "the longest key of a shared hash table must be 1 to 1048576 bytes");
        int tranche = area.Tranches.Register(area.Owner, TrancheName);
        int slotShift = keySize is >= 1 and <= InlineKeyMax ? InlineSlotShift : PlainSlotShift;
        var control = area.Allocate(ControlSize, zero: true);
        AreaPointer buckets = AreaPointer.Null;
        try
        {
            buckets = area.Allocate(1L << (InitialSizeLog2 + slotShift), zero: true);
            var region = area.Region(control, ControlSize);
            ref var h = ref region.Ref<HashTableHeader>(0);
            h.LayoutVersion = HashTableHeader.CurrentLayoutVersion;
            h.StructSize = ControlSize;
            h.KeySize = keySize;
            h.MaxKeyLength = keySize == 0 ? maxKeyLength : keySize;
            h.Partitions = PartitionCount;
            h.SizeLog2 = InitialSizeLog2;
            h.TrancheId = tranche;
            h.Buckets = buckets.Value;
            h.SlotShift = slotShift;
            var segment = area.LockSegment(control);
            for (int i = 0; i < PartitionCount; i++)
                segment.InitializeLock(control.Offset + HashTableHeader.Size + (long)i * HashTablePartition.Size, tranche);
            Volatile.Write(ref h.Magic, HashTableHeader.ExpectedMagic);
            return new SharedHashTable(area, control);
        }
        catch
        {
            if (!buckets.IsNull)
                area.Free(buckets);
            area.Free(control);
            throw;
        }
    }

    /// <summary>The table whose control block is at <paramref name="control"/> (PostgreSQL's dshash_attach);
    /// validated.</summary>
    public static SharedHashTable Attach(SharedArea area, AreaPointer control)
    {
        ArgumentNullException.ThrowIfNull(area);
        if (control.IsNull)
            throw new ArgumentException("a shared hash table's pointer cannot be null", nameof(control));
        return new SharedHashTable(area, control);
    }

    private static int MaxLog2For(int slotShift) => MaxSizeLog2 - (slotShift - PlainSlotShift);

    private static string? Validate(ShmemRegion region)
    {
        ref var h = ref region.Ref<HashTableHeader>(0);
        if (Volatile.Read(ref h.Magic) != HashTableHeader.ExpectedMagic)
            return $"Found magic 0x{h.Magic:X8}, expected 0x{HashTableHeader.ExpectedMagic:X8}.";
        if (h.LayoutVersion != HashTableHeader.CurrentLayoutVersion)
            return $"The table has layout version {h.LayoutVersion}; this build reads version {HashTableHeader.CurrentLayoutVersion}.";
        if (h.StructSize != ControlSize || h.Partitions != PartitionCount)
            return $"The table says {h.StructSize} bytes and {h.Partitions} partitions; this build expects {ControlSize} and {PartitionCount}.";
        bool inlineKeys = h.KeySize is >= 1 and <= InlineKeyMax;
        if (h.SlotShift != (inlineKeys ? InlineSlotShift : PlainSlotShift))
            return $"The table has slots of 2^{h.SlotShift} bytes for keys of {h.KeySize} bytes.";
        if (h.SizeLog2 < PartitionBits || h.SizeLog2 > MaxLog2For(h.SlotShift) || h.KeySize < 0 || h.MaxKeyLength < 1)
            return $"The table has 2^{h.SizeLog2} buckets, key size {h.KeySize}, longest key {h.MaxKeyLength}.";
        return null;
    }

    /// <summary>The hash every process computes for <paramref name="key"/> (no per-process seed: it is shared).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Hash(ReadOnlySpan<byte> key)
    {
        if (key.Length == 8) // the common fixed size: one round of the finaliser (the high half is well mixed)
            return (uint)(Mix(BinaryPrimitives.ReadUInt64LittleEndian(key) ^ 0x9E37_79B9_7F4A_7C15UL) >> 32);
        return HashAny(key);
    }

    private static uint HashAny(ReadOnlySpan<byte> key)
    {
        ulong h = 0x9E37_79B9_7F4A_7C15UL ^ (ulong)key.Length;
        int i = 0;
        for (; i + 8 <= key.Length; i += 8)
            h = Mix(h ^ BinaryPrimitives.ReadUInt64LittleEndian(key.Slice(i, 8)));
        ulong tail = 0;
        for (int shift = 0; i < key.Length; i++, shift += 8)
            tail |= (ulong)key[i] << shift;
        h = Mix(h ^ tail ^ 0xFF51_AFD7_ED55_8CCDUL);
        return (uint)(h ^ (h >> 32));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Mix(ulong x)
    {
        x *= 0xBF58_476D_1CE4_E5B9UL;
        x ^= x >> 31;
        x *= 0x94D0_49BB_1331_11EBUL;
        return x ^ (x >> 29);
    }

    /// <summary>A fixed key of at most 8 bytes as the zero-padded word an inline slot stores.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong KeyWord(ReadOnlySpan<byte> key)
    {
        if (key.Length == 8)
            return BinaryPrimitives.ReadUInt64LittleEndian(key);
        ulong word = 0;
        key.CopyTo(new Span<byte>(&word, key.Length));
        return word;
    }

    /// <summary>Copies the value of <paramref name="key"/> into <paramref name="destination"/> (as much as fits) and
    /// returns its length, or -1 when the key is absent: optimistically without a lock, else under the shared
    /// partition lock. <paramref name="destination"/> may be written more than once.</summary>
    public int Read(ReadOnlySpan<byte> key, Span<byte> destination)
    {
        CheckKey(key);
        uint hash = Hash(key);
        var view = _view;
        if (view is not null)
        {
            int found = TryReadOptimistic(key, hash, destination, view);
            if (found != Retry)
                return found;
        }
        return ReadSlow(key, hash, destination);
    }

    /// <summary>The read after a first optimistic attempt failed (or there was no bucket view yet): a few more
    /// attempts with a fresh view, then the shared partition lock.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int ReadSlow(ReadOnlySpan<byte> key, uint hash, Span<byte> destination)
    {
        for (int attempt = 1; attempt < OptimisticAttempts; attempt++)
        {
            var view = CurrentView();
            if (view is null)
                break;
            int found = TryReadOptimistic(key, hash, destination, view);
            if (found != Retry)
                return found;
        }
        int partition = (int)(hash >> (32 - PartitionBits));
        ref readonly var lk = ref _locks[partition];
        _owner.Acquire(in lk, LWLockMode.Shared);
        try
        {
            CheckNotDestroyed();
            byte* found = Find(key, hash, partition, out byte* slot, out ulong* link);
            if (found == null)
                return -1;
            int length = ValueLengthAt(found, slot, link);
            new ReadOnlySpan<byte>(ValueAt(found, link, key.Length), Math.Min(length, destination.Length)).CopyTo(destination);
            return length;
        }
        finally
        {
            _owner.Release(in lk);
        }
    }

    private const int Retry = -2;
    private const int OptimisticAttempts = 4;
    private const int MaxOptimisticSteps = 256;

    /// <summary>This process's view of the current bucket array: the table's <see cref="HashTableHeader.Generation"/>
    /// when it was resolved, its address here (bounds-checked once, as a whole, against its mapped segment) and the
    /// shift from a hash to a bucket index. One object, replaced whole: a reader reads it once and sees it consistent.
    /// A stale view is harmless: a reader checks the generation inside its sequence-lock window.</summary>
    private sealed class BucketsView(long generation, nint slots, int shift)
    {
        public readonly long Generation = generation;
        public readonly nint Slots = slots;
        public readonly int Shift = shift;
    }

    private BucketsView? _view;

    /// <summary>The view of the current bucket array, resolving it again after a resize; null when it cannot be
    /// resolved now (a resize is under way, the table or the area is destroyed, or the array is in a segment this
    /// process has not mapped yet: the locked path maps it).</summary>
    private BucketsView? CurrentView()
    {
        var view = _view;
        if (view is not null && view.Generation == Volatile.Read(ref _header->Generation))
            return view;
        ref long version = ref _partitions[0].Version; // a resize or a destroy changes every partition's version
        long before = Volatile.Read(ref version);
        if ((before & 1) != 0 || _header->Destroyed != 0 || *_areaDestroyed != 0)
            return null;
        long generation = _header->Generation;
        int log2 = _header->SizeLog2;
        ulong buckets = _header->Buckets;
        Volatile.ReadBarrier();
        if (Volatile.Read(ref version) != before || log2 < PartitionBits || log2 > _maxSizeLog2)
            return null;
        byte* slots = _area.TryAddress(new AreaPointer(buckets), 1L << (log2 + _slotShift));
        if (slots == null)
            return null;
        view = new BucketsView(generation, (nint)slots, 32 - log2);
        _view = view;
        return view;
    }

    /// <summary>One lock-free read: the value's length (-1: absent) if the partition's version was even and unchanged
    /// across the walk and <paramref name="view"/> is current, else <see cref="Retry"/>. Never throws for what it
    /// reads: an inline length out of range, a pointer that does not resolve in this process's mapped segments, an
    /// impossible length or a long walk is a retry (the locked path decides).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int TryReadOptimistic(ReadOnlySpan<byte> key, uint hash, Span<byte> destination, BucketsView view)
    {
        ref long version = ref _partitions[hash >> (32 - PartitionBits)].Version;
        long before = Volatile.Read(ref version);
        if (((int)before & 1) != 0 || _header->Generation != view.Generation || *_areaDestroyed != 0)
            return Retry; // changing, resized or destroyed (the locked path reports a destroyed table or area)
        byte* slot = (byte*)view.Slots + ((nuint)(hash >> view.Shift) << _slotShift); // in the array: checked with the view
        int result;
        int hits = _inline ? InlineHits(slot, KeyWord(key)) : 0;
        if (hits != 0)
        {
            int entry = BitOperations.TrailingZeroCount(hits);
            result = slot[SlotMetas + entry] - 1;
            if (result > InlineValueMax)
                return Retry;
            CopyValue(slot + SlotEntries + entry * EntrySize + 8, result, destination);
        }
        else
        {
            result = TryWalkOptimistic(*(ulong*)slot, key, hash, destination);
            if (result == Retry)
                return Retry;
        }
        Volatile.ReadBarrier(); // the walk's loads complete before the version is read again
        return Volatile.Read(ref version) == before ? result : Retry;
    }

    /// <summary>A bit per live entry of an inline slot whose key is <paramref name="key"/> (at most one when the
    /// slot is consistent), computed without branches so that a find mispredicts nothing whichever entry holds it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int InlineHits(byte* slot, ulong key)
    {
        bool e0 = (*(ulong*)(slot + SlotEntries) == key) & (slot[SlotMetas] != 0);
        bool e1 = (*(ulong*)(slot + SlotEntries + EntrySize) == key) & (slot[SlotMetas + 1] != 0);
        bool e2 = (*(ulong*)(slot + SlotEntries + 2 * EntrySize) == key) & (slot[SlotMetas + 2] != 0);
        return *(byte*)&e0 | (*(byte*)&e1 << 1) | (*(byte*)&e2 << 2); // a bool is 0 or 1: no branch, unlike ?:
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyValue(byte* value, int length, Span<byte> destination)
    {
        int copy = Math.Min(length, destination.Length);
        if (copy == 8)
            Unsafe.WriteUnaligned(ref MemoryMarshal.GetReference(destination), *(ulong*)value);
        else
            new ReadOnlySpan<byte>(value, copy).CopyTo(destination);
    }

    /// <summary>The optimistic walk of a chain of items (see <see cref="TryReadOptimistic"/>).</summary>
    private int TryWalkOptimistic(ulong next, ReadOnlySpan<byte> key, uint hash, Span<byte> destination)
    {
        int keyLength = key.Length;
        for (int steps = 0; next != 0; steps++)
        {
            byte* item = steps < MaxOptimisticSteps ? _area.TryAddress(new AreaPointer(next), ItemHeaderSize + keyLength) : null;
            if (item == null)
                return Retry;
            if (ItemHash(item) == hash && KeyLength(item) == keyLength
                && (keyLength == 8
                    ? *(ulong*)(item + ItemHeaderSize) == BinaryPrimitives.ReadUInt64LittleEndian(key)
                    : new ReadOnlySpan<byte>(item + ItemHeaderSize, keyLength).SequenceEqual(key)))
            {
                int length = ValueLength(item);
                int copy = Math.Min(length, destination.Length);
                if (length < 0 || length > ValueCapacity(item) || (copy > 0 && _area.TryAddress(new AreaPointer(next), ItemHeaderSize + Align8(keyLength) + (long)copy) == null))
                    return Retry;
                CopyValue(ValueOf(item, keyLength), copy, destination);
                return length;
            }
            next = *(ulong*)item;
        }
        return -1;
    }

    /// <summary>Marks the start of a change to <paramref name="partition"/>'s chains or values (its lock held
    /// exclusively): lock-free readers retry until <see cref="EndChange"/>.</summary>
    private void BeginChange(int partition) => Interlocked.Increment(ref _partitions[partition].Version);

    private void EndChange(int partition) =>
        Volatile.Write(ref _partitions[partition].Version, _partitions[partition].Version + 1);

    /// <summary>The value of <paramref name="key"/>, or null when absent.</summary>
    public byte[]? Get(ReadOnlySpan<byte> key)
    {
        Span<byte> small = stackalloc byte[256];
        int length = Read(key, small);
        if (length < 0)
            return null;
        if (length <= small.Length)
            return small[..length].ToArray();
        while (true) // a larger value: read it whole into an array of its size (again if it changed size meanwhile)
        {
            var value = new byte[length];
            int now = Read(key, value);
            if (now < 0)
                return null;
            if (now <= value.Length)
                return now == value.Length ? value : value[..now];
            length = now;
        }
    }

    /// <summary>True when <paramref name="key"/> is present.</summary>
    public bool ContainsKey(ReadOnlySpan<byte> key) => Read(key, default) >= 0;

    /// <summary>Inserts or replaces (<paramref name="onlyIfAbsent"/>: inserts only). True when the key was absent.</summary>
    public bool Set(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, bool onlyIfAbsent = false) =>
        Write(key, value, onlyIfAbsent ? WriteMode.AddOnly : WriteMode.Upsert, default) == WriteResult.Inserted;

    /// <summary>Replaces the value of <paramref name="key"/> with <paramref name="value"/> only if it is now
    /// <paramref name="comparison"/> (ConcurrentDictionary's TryUpdate: a compare-and-set for read-modify-write).
    /// False when the key is absent or its value differs.</summary>
    public bool TryUpdate(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ReadOnlySpan<byte> comparison) =>
        Write(key, value, WriteMode.ReplaceIfEqual, comparison) == WriteResult.Replaced;

    private enum WriteMode
    {
        Upsert,
        AddOnly,
        ReplaceIfEqual,
    }

    private enum WriteResult
    {
        Inserted,
        Replaced,
        Unchanged,
    }

    private WriteResult Write(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, WriteMode mode, ReadOnlySpan<byte> comparison)
    {
        CheckKey(key);
        if (value.Length > SharedArea.MaxAllocationSize - ItemHeaderSize - Align8(key.Length))
            throw new ArgumentOutOfRangeException(nameof(value), value.Length,
                $"a value of a shared hash table can have at most {SharedArea.MaxAllocationSize - ItemHeaderSize - Align8(key.Length)} bytes with this key");
        uint hash = Hash(key);
        int partition = (int)(hash >> (32 - PartitionBits));
        ref readonly var lk = ref _locks[partition];
        int resizeFrom = -1;
        _owner.Acquire(in lk, LWLockMode.Exclusive);
        try
        {
            CheckNotDestroyed();
            byte* found = Find(key, hash, partition, out byte* slot, out ulong* link);
            if (found != null)
            {
                if (mode == WriteMode.AddOnly)
                    return WriteResult.Unchanged;
                if (mode == WriteMode.ReplaceIfEqual
                    && !new ReadOnlySpan<byte>(ValueAt(found, link, key.Length), ValueLengthAt(found, slot, link)).SequenceEqual(comparison))
                    return WriteResult.Unchanged;
                if (link == null) // inline
                {
                    byte* meta = MetaOf(slot, found);
                    if (value.Length <= InlineValueMax)
                    {
                        BeginChange(partition);
                        value.CopyTo(new Span<byte>(found + 8, value.Length));
                        *meta = (byte)(value.Length + 1);
                        EndChange(partition);
                        return WriteResult.Replaced;
                    }
                    var moved = NewItem(key, hash, value, next: *(ulong*)slot); // too large for the slot: an item
                    BeginChange(partition);
                    *(ulong*)slot = moved.Value;
                    *meta = 0;
                    EndChange(partition);
                    return WriteResult.Replaced;
                }
                int capacity = ValueCapacity(found);
                if (value.Length <= capacity && (capacity <= 1024 || value.Length >= capacity / 4))
                {
                    BeginChange(partition);
                    value.CopyTo(new Span<byte>(ValueOf(found, key.Length), value.Length));
                    SetValueLength(found, value.Length);
                    EndChange(partition);
                    return WriteResult.Replaced;
                }
                var old = new AreaPointer(*link);
                int free = _inline && value.Length <= InlineValueMax ? FreeEntry(slot) : -1;
                if (free >= 0)
                {
                    BeginChange(partition); // the item's value shrank to fit an empty inline entry: move it there
                    *link = *(ulong*)found;
                    WriteInline(slot, free, key, value);
                    EndChange(partition);
                    _area.Free(old);
                    return WriteResult.Replaced;
                }
                var replacement = NewItem(key, hash, value, next: *(ulong*)found); // allocated before anything changes
                BeginChange(partition);
                *link = replacement.Value;
                EndChange(partition);
                _area.Free(old);
                return WriteResult.Replaced;
            }
            if (mode == WriteMode.ReplaceIfEqual)
                return WriteResult.Unchanged;
            int empty = _inline && value.Length <= InlineValueMax ? FreeEntry(slot) : -1;
            if (empty >= 0)
            {
                BeginChange(partition);
                WriteInline(slot, empty, key, value);
                EndChange(partition);
            }
            else
            {
                var made = NewItem(key, hash, value, next: *(ulong*)slot);
                BeginChange(partition);
                *(ulong*)slot = made.Value;
                EndChange(partition);
            }
            int log2 = _header->SizeLog2;
            long count = ++_partitions[partition].Count;
            if (count > MaxPerPartition(log2, _inline) && log2 < _maxSizeLog2)
                resizeFrom = log2;
        }
        finally
        {
            _owner.Release(in lk);
        }
        if (resizeFrom >= 0)
            Resize(resizeFrom);
        return WriteResult.Inserted;
    }

    /// <summary>Writes inline entry <paramref name="entry"/> of <paramref name="slot"/> (inside a change of its
    /// partition).</summary>
    private static void WriteInline(byte* slot, int entry, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        byte* e = slot + SlotEntries + entry * EntrySize;
        *(ulong*)e = KeyWord(key);
        *(ulong*)(e + 8) = 0;
        value.CopyTo(new Span<byte>(e + 8, value.Length));
        slot[SlotMetas + entry] = (byte)(value.Length + 1);
    }

    /// <summary>The first empty entry of an inline slot, or -1.</summary>
    private static int FreeEntry(byte* slot)
    {
        for (int i = 0; i < InlineEntries; i++)
            if (slot[SlotMetas + i] == 0)
                return i;
        return -1;
    }

    /// <summary>The length byte of inline entry <paramref name="entry"/> of <paramref name="slot"/>.</summary>
    private static byte* MetaOf(byte* slot, byte* entry) => slot + SlotMetas + (int)((entry - slot - SlotEntries) / EntrySize);

    /// <summary>Removes <paramref name="key"/>; false when absent.</summary>
    public bool Remove(ReadOnlySpan<byte> key)
    {
        CheckKey(key);
        uint hash = Hash(key);
        int partition = (int)(hash >> (32 - PartitionBits));
        ref readonly var lk = ref _locks[partition];
        _owner.Acquire(in lk, LWLockMode.Exclusive);
        try
        {
            CheckNotDestroyed();
            byte* found = Find(key, hash, partition, out byte* slot, out ulong* link);
            if (found == null)
                return false;
            if (link == null) // inline
            {
                BeginChange(partition);
                *MetaOf(slot, found) = 0;
                EndChange(partition);
                _partitions[partition].Count--;
                return true;
            }
            var pointer = new AreaPointer(*link);
            BeginChange(partition);
            *link = *(ulong*)found;
            EndChange(partition);
            _partitions[partition].Count--;
            _area.Free(pointer);
            return true;
        }
        finally
        {
            _owner.Release(in lk);
        }
    }

    /// <summary>A callback that changes a value in place, under the partition lock.</summary>
    public delegate void ValueUpdater<TState>(Span<byte> value, TState state);

    /// <summary>Runs <paramref name="update"/> on the value of <paramref name="key"/> in place, under the exclusive
    /// partition lock (PostgreSQL's dshash_find(…, exclusive) … dshash_release_lock). False when the key is absent.</summary>
    public bool Update<TState>(ReadOnlySpan<byte> key, ValueUpdater<TState> update, TState state)
    {
        ArgumentNullException.ThrowIfNull(update);
        CheckKey(key);
        uint hash = Hash(key);
        int partition = (int)(hash >> (32 - PartitionBits));
        ref readonly var lk = ref _locks[partition];
        _owner.Acquire(in lk, LWLockMode.Exclusive);
        try
        {
            CheckNotDestroyed();
            byte* found = Find(key, hash, partition, out byte* slot, out ulong* link);
            if (found == null)
                return false;
            BeginChange(partition);
            try
            {
                update(new Span<byte>(ValueAt(found, link, key.Length), ValueLengthAt(found, slot, link)), state);
            }
            finally
            {
                EndChange(partition);
            }
            return true;
        }
        finally
        {
            _owner.Release(in lk);
        }
    }

    /// <summary>Every item, one partition at a time under its shared lock (PostgreSQL's dshash_seq_*): a change made
    /// during the walk to a partition not yet visited is seen, one to a partition already visited is not.</summary>
    public IEnumerable<KeyValuePair<byte[], byte[]>> Items()
    {
        var batch = new List<KeyValuePair<byte[], byte[]>>();
        for (int p = 0; p < PartitionCount; p++)
        {
            batch.Clear();
            CopyPartition(p, batch);
            foreach (var pair in batch)
                yield return pair;
        }
    }

    private void CopyPartition(int partition, List<KeyValuePair<byte[], byte[]>> into)
    {
        ref readonly var lk = ref _locks[partition];
        _owner.Acquire(in lk, LWLockMode.Shared);
        try
        {
            CheckNotDestroyed();
            int log2 = _header->SizeLog2;
            long perPartition = 1L << (log2 - PartitionBits);
            byte* slots = Slots(log2);
            long limit = ChainLimit(partition);
            for (long b = partition * perPartition; b < (partition + 1) * perPartition; b++)
            {
                byte* slot = slots + (b << _slotShift);
                for (int i = 0; _inline && i < InlineEntries; i++)
                {
                    byte* entry = slot + SlotEntries + i * EntrySize;
                    if (slot[SlotMetas + i] != 0)
                        into.Add(new(new ReadOnlySpan<byte>(entry, KeySize).ToArray(),
                            new ReadOnlySpan<byte>(entry + 8, InlineLength(slot, entry)).ToArray()));
                }
                long steps = 0;
                for (ulong next = *(ulong*)slot; next != 0;)
                {
                    byte* item = CheckedItem(next, ref steps, limit);
                    int keyLength = KeyLength(item);
                    if (keyLength < 1 || keyLength > MaxKeyLength)
                        throw Corrupt($"an item has a key of {keyLength} bytes");
                    into.Add(new(new ReadOnlySpan<byte>(item + ItemHeaderSize, keyLength).ToArray(),
                        new ReadOnlySpan<byte>(ValueOf(item, keyLength), CheckedValueLength(next, item, keyLength)).ToArray()));
                    next = *(ulong*)item;
                }
            }
        }
        finally
        {
            _owner.Release(in lk);
        }
    }

    /// <summary>Frees every item and the buckets (PostgreSQL's dshash_destroy); every process's later use of the table
    /// fails with "has been destroyed". The control block (16 kB, with the locks) stays allocated until the area is
    /// destroyed, so that a late user gets that error instead of reading freed memory.</summary>
    public void Destroy()
    {
        CheckAttached();
        if (_area.IsNamed && _area.Root.Root == Pointer)
            throw new InvalidOperationException($"shared hash table {Pointer} belongs to the DSM registry: release its name instead of destroying it");
        AcquireAll();
        try
        {
            CheckNotDestroyed();
            int log2 = _header->SizeLog2;
            long buckets = 1L << log2;
            byte* slots = Slots(log2);
            for (long b = 0; b < buckets; b++)
            {
                ulong* chain = (ulong*)(slots + (b << _slotShift));
                for (ulong next = *chain; next != 0;)
                {
                    var pointer = new AreaPointer(next);
                    next = *(ulong*)_area.Address(pointer);
                    _area.Free(pointer);
                }
                *chain = 0;
            }
            for (int i = 0; i < PartitionCount; i++)
                _partitions[i].Count = 0;
            _area.Free(new AreaPointer(_header->Buckets));
            _header->Buckets = 0;
            _header->Generation++;
            Volatile.Write(ref _header->Destroyed, 1);
        }
        finally
        {
            ReleaseAll();
        }
    }

    /// <summary>Doubles the bucket array if it still has 2^<paramref name="fromLog2"/> buckets, under every
    /// partition lock (taken in order, so two resizers never deadlock). Old bucket b becomes new buckets 2b and
    /// 2b + 1, so the one inline entry of b always finds its new slot's entry free; a chained item whose new slot's
    /// entry is free and whose value fits moves into it.</summary>
    private void Resize(int fromLog2)
    {
        try
        {
            AcquireAll();
        }
        catch (Errors.LWLockException)
        {
            return; // this process holds too many locks to take every partition's: a later insert resizes (growth is optional)
        }
        List<AreaPointer>? moved = null;
        try
        {
            if (_header->Destroyed != 0 || _header->SizeLog2 != fromLog2)
                return; // someone else resized first
            int log2 = fromLog2 + 1;
            var fresh = _area.Allocate(1L << (log2 + _slotShift), zero: true, nullIfFull: true);
            if (fresh.IsNull)
                return; // the area is full: keep the longer chains rather than fail an insert that succeeded
            byte* to = _area.Address(fresh);
            var old = new AreaPointer(_header->Buckets);
            byte* from = Slots(fromLog2);
            long count = 1L << fromLog2;
            for (long b = 0; b < count; b++)
            {
                byte* source = from + (b << _slotShift);
                for (int i = 0; _inline && i < InlineEntries; i++)
                {
                    byte* entry = source + SlotEntries + i * EntrySize;
                    if (source[SlotMetas + i] == 0)
                        continue;
                    var entryKey = new ReadOnlySpan<byte>(entry, KeySize);
                    byte* target = to + ((long)(Hash(entryKey) >> (32 - log2)) << _slotShift);
                    int free = FreeEntry(target);
                    if (free < 0) // only from a key in the wrong bucket: old bucket b's entries go to new buckets 2b and 2b + 1
                        throw Corrupt($"bucket {b} holds an entry of another bucket");
                    WriteInline(target, free, entryKey, new ReadOnlySpan<byte>(entry + 8, InlineLength(source, entry)));
                }
                for (ulong next = *(ulong*)source; next != 0;)
                {
                    byte* item = _area.Address(new AreaPointer(next));
                    ulong following = *(ulong*)item;
                    byte* target = to + ((long)(ItemHash(item) >> (32 - log2)) << _slotShift);
                    int valueLength = ValueLength(item);
                    int free = _inline && valueLength is >= 0 and <= InlineValueMax && KeyLength(item) == KeySize ? FreeEntry(target) : -1;
                    if (free >= 0)
                    {
                        WriteInline(target, free, new ReadOnlySpan<byte>(item + ItemHeaderSize, KeySize),
                            new ReadOnlySpan<byte>(ValueOf(item, KeySize), valueLength));
                        (moved ??= []).Add(new AreaPointer(next));
                    }
                    else
                    {
                        *(ulong*)item = *(ulong*)target;
                        *(ulong*)target = next;
                    }
                    next = following;
                }
            }
            _header->Buckets = fresh.Value;
            _header->SizeLog2 = log2;
            _header->Resizes++;
            _header->Generation++;
            _area.Free(old);
            if (moved is not null)
                foreach (var item in moved)
                    _area.Free(item); // unreachable now: they were copied into inline entries
        }
        finally
        {
            ReleaseAll();
        }
    }

    /// <summary>Every partition lock, exclusively and in order, with every partition marked changing (a resize or a
    /// destroy moves every chain).</summary>
    private void AcquireAll()
    {
        int taken = 0;
        try
        {
            for (; taken < PartitionCount; taken++)
                _owner.Acquire(in _locks[taken], LWLockMode.Exclusive);
        }
        catch
        {
            while (--taken >= 0)
                _owner.Release(in _locks[taken]);
            throw;
        }
        for (int i = 0; i < PartitionCount; i++)
            BeginChange(i);
    }

    private void ReleaseAll()
    {
        for (int i = PartitionCount - 1; i >= 0; i--)
        {
            EndChange(i);
            _owner.Release(in _locks[i]);
        }
    }

    /// <summary>Items a partition holds before the table doubles: 0.75 per bucket, or 1.5 with inline slots (half their
    /// entries, so that few keys spill into chains).</summary>
    private static long MaxPerPartition(int log2, bool inlineSlots) =>
        (1L << (log2 - PartitionBits)) * 3 / (inlineSlots ? 2 : 4);

    /// <summary>This process's address of the bucket array of 2^<paramref name="log2"/> slots, checked to lie whole in
    /// its segment. Under a partition lock.</summary>
    private byte* Slots(int log2)
    {
        if (log2 < PartitionBits || log2 > _maxSizeLog2)
            throw Corrupt($"the table says 2^{log2} buckets");
        var pointer = new AreaPointer(_header->Buckets);
        MapOrThrowCorrupt(pointer);
        byte* slots = _area.TryAddress(pointer, 1L << (log2 + _slotShift));
        return slots != null ? slots : throw Corrupt($"its bucket array {pointer} of 2^{log2} slots is not inside its segment");
    }

    /// <summary>The item of <paramref name="key"/>, or its inline entry (<c>[key 8][value 8]</c>) with
    /// <paramref name="link"/> null; null when absent. <paramref name="slot"/> is the key's bucket slot (its first
    /// 8 bytes the chain) and <paramref name="link"/> the link that points to the item. Under the partition lock;
    /// throws <see cref="ShmemCorruptException"/> for a pointer outside the area, an impossible length or a chain
    /// longer than the partition's item count.</summary>
    private byte* Find(ReadOnlySpan<byte> key, uint hash, int partition, out byte* slot, out ulong* link)
    {
        int log2 = _header->SizeLog2;
        slot = Slots(log2) + ((long)(hash >> (32 - log2)) << _slotShift);
        if (_inline)
        {
            ulong word = KeyWord(key);
            for (int i = 0; i < InlineEntries; i++)
            {
                byte* entry = slot + SlotEntries + i * EntrySize;
                if (slot[SlotMetas + i] != 0 && InlineLength(slot, entry) >= 0 && *(ulong*)entry == word)
                {
                    link = null;
                    return entry;
                }
            }
        }
        link = (ulong*)slot;
        long steps = 0, limit = ChainLimit(partition);
        while (*link != 0)
        {
            byte* item = CheckedItem(*link, ref steps, limit);
            if (ItemHash(item) == hash && KeyLength(item) == key.Length
                && new ReadOnlySpan<byte>(item + ItemHeaderSize, key.Length).SequenceEqual(key))
            {
                CheckedValueLength(*link, item, key.Length);
                return item;
            }
            link = (ulong*)item;
        }
        return null;
    }

    /// <summary>Maps the segment of <paramref name="pointer"/> if need be; a pointer outside the area is corruption.</summary>
    private void MapOrThrowCorrupt(AreaPointer pointer)
    {
        try
        {
            _area.Address(pointer);
        }
        catch (ArgumentException e)
        {
            throw Corrupt(e.Message);
        }
    }

    /// <summary>Most items a chain of <paramref name="partition"/> can have (its count, under its lock).</summary>
    private long ChainLimit(int partition) => Math.Max(_partitions[partition].Count, 0) + 1;

    /// <summary>The item at <paramref name="pointer"/>, its header and a key of up to <see cref="MaxKeyLength"/>
    /// bytes checked to lie in the area (the walk's <paramref name="steps"/>th: more than <paramref name="limit"/> is a
    /// cycle).</summary>
    private byte* CheckedItem(ulong pointer, ref long steps, long limit)
    {
        if (++steps > limit)
            throw Corrupt($"a chain has more than {limit} items");
        var p = new AreaPointer(pointer);
        MapOrThrowCorrupt(p);
        byte* item = _area.TryAddress(p, ItemHeaderSize);
        if (item == null || _area.TryAddress(p, ItemHeaderSize + (long)Align8(Math.Clamp(KeyLength(item), 0, MaxKeyLength))) == null)
            throw Corrupt($"item {p} is not inside its segment");
        return item;
    }

    /// <summary>The item's value length, checked to be within its capacity and its segment.</summary>
    private int CheckedValueLength(ulong pointer, byte* item, int keyLength)
    {
        int length = ValueLength(item);
        if (length < 0 || length > ValueCapacity(item)
            || _area.TryAddress(new AreaPointer(pointer), ItemHeaderSize + Align8(keyLength) + (long)ValueCapacity(item)) == null)
            throw Corrupt($"item {new AreaPointer(pointer)} says a value of {length} bytes in {ValueCapacity(item)}");
        return length;
    }

    /// <summary>The value length of inline entry <paramref name="entry"/> of <paramref name="slot"/>, checked.</summary>
    private int InlineLength(byte* slot, byte* entry)
    {
        int length = *MetaOf(slot, entry) - 1;
        return (uint)length <= InlineValueMax ? length : throw Corrupt($"an inline entry says a value of {length} bytes");
    }

    private ShmemCorruptException Corrupt(string detail) =>
        new($"shared hash table {Pointer} of {_area} is corrupt", detail);

    private int ValueLengthAt(byte* found, byte* slot, ulong* link) =>
        link == null ? InlineLength(slot, found) : ValueLength(found);

    private static byte* ValueAt(byte* found, ulong* link, int keyLength) =>
        link == null ? found + 8 : ValueOf(found, keyLength);

    private AreaPointer NewItem(ReadOnlySpan<byte> key, uint hash, ReadOnlySpan<byte> value, ulong next)
    {
        long size = ItemHeaderSize + Align8(key.Length) + (long)value.Length;
        var pointer = _area.Allocate(size);
        var block = _area.Block(pointer);
        byte* item = block.Base;
        *(ulong*)item = next;
        *(uint*)(item + 8) = hash;
        *(int*)(item + 12) = key.Length;
        *(int*)(item + 16) = value.Length;
        *(int*)(item + 20) = (int)Math.Min(block.Size - ItemHeaderSize - Align8(key.Length), int.MaxValue);
        key.CopyTo(new Span<byte>(item + ItemHeaderSize, key.Length));
        value.CopyTo(new Span<byte>(ValueOf(item, key.Length), value.Length));
        return pointer;
    }

    private static uint ItemHash(byte* item) => *(uint*)(item + 8);

    private static int KeyLength(byte* item) => *(int*)(item + 12);

    private static int ValueLength(byte* item) => *(int*)(item + 16);

    private static void SetValueLength(byte* item, int length) => *(int*)(item + 16) = length;

    private static int ValueCapacity(byte* item) => *(int*)(item + 20);

    private static byte* ValueOf(byte* item, int keyLength) => item + ItemHeaderSize + Align8(keyLength);

    private static int Align8(int n) => (n + 7) & ~7;

    private void CheckKey(ReadOnlySpan<byte> key)
    {
        CheckAttached();
        if (KeySize != 0 ? key.Length != KeySize : key.Length < 1 || key.Length > MaxKeyLength)
            ThrowBadKey(key.Length);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowBadKey(int length) =>
        throw new ArgumentException(KeySize != 0
            ? $"a key of this shared hash table has {KeySize} bytes, not {length}"
            : $"a key of this shared hash table has 1 to {MaxKeyLength} bytes, not {length}", "key");

    /// <summary>Refuses a table that was destroyed, whose area was destroyed, or whose area this process detached
    /// (its memory may be unmapped: checked before the header is read).</summary>
    private void CheckNotDestroyed()
    {
        _area.CheckUsable();
        if (_header->Destroyed != 0)
            throw new ShmemException($"shared hash table {Pointer} of {_area} has been destroyed");
    }

    /// <summary>For entry points that read the table before taking a lock.</summary>
    private void CheckAttached()
    {
        if (_area.IsDetached)
            _area.CheckUsable(); // throws ObjectDisposedException
    }
}
