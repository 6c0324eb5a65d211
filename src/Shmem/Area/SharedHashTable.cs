using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Locks;

namespace Postmaster.Shmem.Area;

/// <summary>
/// Header of a <see cref="SharedHashTable"/>'s control block (a block of its area). ABI: any layout change bumps
/// <see cref="CurrentLayoutVersion"/>. Immutable after creation except <see cref="SizeLog2"/>, <see cref="Buckets"/>
/// and <see cref="Resizes"/> (protected by: every partition lock, exclusively) and <see cref="Destroyed"/>.
/// Followed by <see cref="HashTablePartition"/>s.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct HashTableHeader
{
    public const int Size = 64;
    public const uint ExpectedMagic = 0x5448_4D50; // "PMHT" little-endian
    public const uint CurrentLayoutVersion = 2; // 2: partition versions for lock-free readers

    [FieldOffset(0)] public uint Magic;
    [FieldOffset(4)] public uint LayoutVersion;
    [FieldOffset(8)] public long StructSize;     // header and partitions
    [FieldOffset(16)] public int KeySize;        // bytes of every key; 0: keys of 1..MaxKeyLength bytes
    [FieldOffset(20)] public int Partitions;     // = SharedHashTable.PartitionCount when written
    [FieldOffset(24)] public int SizeLog2;       // buckets = 1 << SizeLog2; never below log2(Partitions)
    [FieldOffset(28)] public int TrancheId;      // the partition locks' tranche
    [FieldOffset(32)] public ulong Buckets;      // area pointer to ulong[1 << SizeLog2]: each the first item of a chain
    [FieldOffset(40)] public int MaxKeyLength;
    [FieldOffset(44)] public int Destroyed;      // 1 once destroyed
    [FieldOffset(48)] public long Resizes;       // times the bucket array doubled
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
/// any size up to <see cref="MaxKeyLength"/>) and values of any size, in items allocated from the area and chained from
/// a bucket array. The table is split in <see cref="PartitionCount"/> partitions by the hash's top bits, each with its
/// own LWLock; a bucket always belongs to one partition (the bucket index is the hash's top <c>SizeLog2</c> bits), so
/// operations on different partitions never contend. Reads take no lock at all when they can: they walk the chain
/// optimistically and keep the result only if the partition's <see cref="HashTablePartition.Version"/> did not change
/// meanwhile (a sequence lock; every pointer is bounds-checked and every walk bounded, so reading memory a writer is
/// changing or has freed is harmless), falling back to the shared partition lock after a few attempts. A read thus
/// never writes shared memory and never issues an atomic instruction, which is what lets misses of successive reads
/// overlap. When a partition holds more than three quarters of its bucket
/// count, the table doubles its bucket array while holding every partition lock (PostgreSQL's resize: rare, and
/// proportional to the items).
/// <para><b>Item.</b> <c>[next 8][hash 4][key length 4][value length 4][value capacity 4][key, padded to 8][value]</c>. A
/// value is rewritten in place when the new one fits the item's block, otherwise the item is replaced.</para>
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

    private const int InitialSizeLog2 = 10;   // 1024 buckets, 8 per partition
    private const int MaxSizeLog2 = 26;       // 64 M buckets: a 512 MB bucket array
    private const long ControlSize = HashTableHeader.Size + (long)PartitionCount * HashTablePartition.Size;

    private readonly SharedArea _area;
    private readonly LockOwner _owner;
    private readonly HashTableHeader* _header;
    private readonly HashTablePartition* _partitions;
    private readonly LWLockHandle[] _locks = new LWLockHandle[PartitionCount];

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
        var segment = area.LockSegment(control);
        for (int i = 0; i < PartitionCount; i++)
            _locks[i] = segment.Lock(control.Offset + HashTableHeader.Size + (long)i * HashTablePartition.Size);
        KeySize = _header->KeySize;
        MaxKeyLength = _header->MaxKeyLength;
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
        var control = area.Allocate(ControlSize, zero: true);
        AreaPointer buckets = AreaPointer.Null;
        try
        {
            buckets = area.Allocate(sizeof(ulong) << InitialSizeLog2, zero: true);
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

    private static string? Validate(ShmemRegion region)
    {
        ref var h = ref region.Ref<HashTableHeader>(0);
        if (Volatile.Read(ref h.Magic) != HashTableHeader.ExpectedMagic)
            return $"Found magic 0x{h.Magic:X8}, expected 0x{HashTableHeader.ExpectedMagic:X8}.";
        if (h.LayoutVersion != HashTableHeader.CurrentLayoutVersion)
            return $"The table has layout version {h.LayoutVersion}; this build reads version {HashTableHeader.CurrentLayoutVersion}.";
        if (h.StructSize != ControlSize || h.Partitions != PartitionCount)
            return $"The table says {h.StructSize} bytes and {h.Partitions} partitions; this build expects {ControlSize} and {PartitionCount}.";
        if (h.SizeLog2 < PartitionBits || h.SizeLog2 > MaxSizeLog2 || h.KeySize < 0 || h.MaxKeyLength < 1)
            return $"The table has 2^{h.SizeLog2} buckets, key size {h.KeySize}, longest key {h.MaxKeyLength}.";
        return null;
    }

    /// <summary>The hash every process computes for <paramref name="key"/> (no per-process seed: it is shared).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Hash(ReadOnlySpan<byte> key)
    {
        if (key.Length == 8) // the common fixed size: the loop below, unrolled (the same value)
        {
            ulong x = Mix(Mix(0x9E37_79B9_7F4A_7C15UL ^ 8UL ^ BinaryPrimitives.ReadUInt64LittleEndian(key)) ^ 0xFF51_AFD7_ED55_8CCDUL);
            return (uint)(x ^ (x >> 32));
        }
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

    /// <summary>Copies the value of <paramref name="key"/> into <paramref name="destination"/> (as much as fits) and
    /// returns its length, or -1 when the key is absent: optimistically without a lock, else under the shared
    /// partition lock. <paramref name="destination"/> may be written more than once.</summary>
    public int Read(ReadOnlySpan<byte> key, Span<byte> destination)
    {
        CheckKey(key);
        uint hash = Hash(key);
        int partition = (int)(hash >> (32 - PartitionBits));
        for (int attempt = 0; attempt < OptimisticAttempts; attempt++)
        {
            int found = TryReadOptimistic(key, hash, partition, destination);
            if (found != Retry)
                return found;
        }
        ref readonly var lk = ref _locks[partition];
        _owner.Acquire(in lk, LWLockMode.Shared);
        try
        {
            CheckNotDestroyed();
            byte* item = Find(key, hash, out _);
            if (item == null)
                return -1;
            int length = ValueLength(item);
            new ReadOnlySpan<byte>(ValueOf(item, key.Length), Math.Min(length, destination.Length)).CopyTo(destination);
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

    /// <summary>One lock-free read: the value's length (-1: absent) if the partition's version was even and unchanged
    /// across the walk, else <see cref="Retry"/>. Never throws for what it reads: a pointer that does not resolve in
    /// this process's mapped segments, an impossible length or a long walk is a retry (the locked path decides).</summary>
    private int TryReadOptimistic(ReadOnlySpan<byte> key, uint hash, int partition, Span<byte> destination)
    {
        ref long version = ref _partitions[partition].Version;
        long before = Volatile.Read(ref version);
        if ((before & 1) != 0 || _header->Destroyed != 0 || _area.IsDestroyed)
            return Retry; // the locked path reports a destroyed table or area
        int log2 = _header->SizeLog2;
        ulong bucketsValue = _header->Buckets;
        ulong* buckets;
        var cache = _bucketsCache; // this process's last resolved bucket array (one object: read once, consistent)
        if (cache is not null && cache.Value == bucketsValue && cache.Log2 == log2)
            buckets = cache.Address;
        else
        {
            if (log2 < PartitionBits || log2 > MaxSizeLog2)
                return Retry;
            buckets = (ulong*)_area.TryAddress(new AreaPointer(bucketsValue), (1L << log2) * sizeof(ulong));
            if (buckets == null)
                return Retry;
            _bucketsCache = new BucketsCache(bucketsValue, log2, buckets); // verified to lie in a mapped segment
        }
        int result = -1;
        ulong next = buckets[hash >> (32 - log2)];
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
                if (length < 0 || (copy > 0 && _area.TryAddress(new AreaPointer(next), ItemHeaderSize + Align8(keyLength) + (long)copy) == null))
                    return Retry;
                byte* value = ValueOf(item, keyLength);
                if (copy == 8)
                    BinaryPrimitives.WriteUInt64LittleEndian(destination, *(ulong*)value);
                else
                    new ReadOnlySpan<byte>(value, copy).CopyTo(destination);
                result = length;
                break;
            }
            next = *(ulong*)item;
        }
        Volatile.ReadBarrier(); // the walk's loads complete before the version is read again
        return Volatile.Read(ref version) == before ? result : Retry;
    }

    /// <summary>A bucket array this process resolved and bounds-checked: (its pointer value, its size) → its address
    /// here. Valid while the area is mapped here; a stale entry is harmless (the version check rejects what it reads).</summary>
    private sealed record BucketsCache(ulong Value, int Log2, nint AddressValue)
    {
        public BucketsCache(ulong value, int log2, ulong* address) : this(value, log2, (nint)address)
        {
        }

        public ulong* Address => (ulong*)AddressValue;
    }

    private BucketsCache? _bucketsCache;

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
            byte* item = Find(key, hash, out ulong* link);
            if (item != null)
            {
                if (mode == WriteMode.AddOnly)
                    return WriteResult.Unchanged;
                if (mode == WriteMode.ReplaceIfEqual
                    && !new ReadOnlySpan<byte>(ValueOf(item, key.Length), ValueLength(item)).SequenceEqual(comparison))
                    return WriteResult.Unchanged;
                int capacity = ValueCapacity(item);
                if (value.Length <= capacity && (capacity <= 1024 || value.Length >= capacity / 4))
                {
                    BeginChange(partition);
                    value.CopyTo(new Span<byte>(ValueOf(item, key.Length), value.Length));
                    SetValueLength(item, value.Length);
                    EndChange(partition);
                    return WriteResult.Replaced;
                }
                var old = new AreaPointer(*link);
                var replacement = NewItem(key, hash, value, next: *(ulong*)item); // allocated before anything changes
                BeginChange(partition);
                *link = replacement.Value;
                EndChange(partition);
                _area.Free(old);
                return WriteResult.Replaced;
            }
            if (mode == WriteMode.ReplaceIfEqual)
                return WriteResult.Unchanged;
            int log2 = _header->SizeLog2;
            ulong* bucket = BucketFor(hash, log2);
            var made = NewItem(key, hash, value, next: *bucket);
            BeginChange(partition);
            *bucket = made.Value;
            EndChange(partition);
            long count = ++_partitions[partition].Count;
            if (count > MaxPerPartition(log2) && log2 < MaxSizeLog2)
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
            byte* item = Find(key, hash, out ulong* link);
            if (item == null)
                return false;
            var pointer = new AreaPointer(*link);
            BeginChange(partition);
            *link = *(ulong*)item;
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
            byte* item = Find(key, hash, out _);
            if (item == null)
                return false;
            BeginChange(partition);
            try
            {
                update(new Span<byte>(ValueOf(item, key.Length), ValueLength(item)), state);
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
            ulong* buckets = (ulong*)_area.Address(new AreaPointer(_header->Buckets));
            for (long b = partition * perPartition; b < (partition + 1) * perPartition; b++)
            {
                for (ulong next = buckets[b]; next != 0;)
                {
                    byte* item = _area.Address(new AreaPointer(next));
                    int keyLength = KeyLength(item);
                    into.Add(new(new ReadOnlySpan<byte>(item + ItemHeaderSize, keyLength).ToArray(),
                        new ReadOnlySpan<byte>(ValueOf(item, keyLength), ValueLength(item)).ToArray()));
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
            long buckets = 1L << _header->SizeLog2;
            ulong* array = (ulong*)_area.Address(new AreaPointer(_header->Buckets));
            for (long b = 0; b < buckets; b++)
            {
                for (ulong next = array[b]; next != 0;)
                {
                    var pointer = new AreaPointer(next);
                    next = *(ulong*)_area.Address(pointer);
                    _area.Free(pointer);
                }
                array[b] = 0;
            }
            for (int i = 0; i < PartitionCount; i++)
                _partitions[i].Count = 0;
            _area.Free(new AreaPointer(_header->Buckets));
            _header->Buckets = 0;
            Volatile.Write(ref _header->Destroyed, 1);
        }
        finally
        {
            ReleaseAll();
        }
    }

    /// <summary>Doubles the bucket array if it still has 2^<paramref name="fromLog2"/> buckets, under every
    /// partition lock (taken in order, so two resizers never deadlock).</summary>
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
        try
        {
            if (_header->Destroyed != 0 || _header->SizeLog2 != fromLog2)
                return; // someone else resized first
            int log2 = fromLog2 + 1;
            var fresh = _area.Allocate(sizeof(ulong) << log2, zero: true, nullIfFull: true);
            if (fresh.IsNull)
                return; // the area is full: keep the longer chains rather than fail an insert that succeeded
            ulong* to = (ulong*)_area.Address(fresh);
            var old = new AreaPointer(_header->Buckets);
            ulong* from = (ulong*)_area.Address(old);
            long count = 1L << fromLog2;
            for (long b = 0; b < count; b++)
            {
                for (ulong next = from[b]; next != 0;)
                {
                    byte* item = _area.Address(new AreaPointer(next));
                    ulong following = *(ulong*)item;
                    ulong* bucket = to + (ItemHash(item) >> (32 - log2));
                    *(ulong*)item = *bucket;
                    *bucket = next;
                    next = following;
                }
            }
            _header->Buckets = fresh.Value;
            _header->SizeLog2 = log2;
            _header->Resizes++;
            _area.Free(old);
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

    private static long MaxPerPartition(int log2) => (1L << (log2 - PartitionBits)) * 3 / 4;

    private ulong* BucketFor(uint hash, int log2) =>
        (ulong*)_area.Address(new AreaPointer(_header->Buckets)) + (hash >> (32 - log2));

    /// <summary>The item of <paramref name="key"/> (null when absent) and the link that points to it. Under the
    /// partition lock.</summary>
    private byte* Find(ReadOnlySpan<byte> key, uint hash, out ulong* link)
    {
        link = BucketFor(hash, _header->SizeLog2);
        while (*link != 0)
        {
            byte* item = _area.Address(new AreaPointer(*link));
            if (ItemHash(item) == hash && KeyLength(item) == key.Length
                && new ReadOnlySpan<byte>(item + ItemHeaderSize, key.Length).SequenceEqual(key))
                return item;
            link = (ulong*)item;
        }
        return null;
    }

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
            throw new ArgumentException(KeySize != 0
                ? $"a key of this shared hash table has {KeySize} bytes, not {key.Length}"
                : $"a key of this shared hash table has 1 to {MaxKeyLength} bytes, not {key.Length}", nameof(key));
    }

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
