using System.Runtime.CompilerServices;
using Postmaster.Shmem.Errors;
using Engine = Postmaster.Shmem.Area;

namespace Postmaster.Workers;

/// <summary>Changes a value of a <see cref="SharedHashTable"/> in place (<see cref="SharedHashTable.Update{TState}"/>),
/// under the lock of the value's partition.</summary>
/// <typeparam name="TState">What the caller passes through (avoids a closure).</typeparam>
/// <param name="value">The value's bytes, in shared memory.</param>
/// <param name="state">The caller's state.</param>
public delegate void SharedValueUpdater<TState>(Span<byte> value, TState state);

/// <summary>
/// A concurrent hash table in a <see cref="SharedArea"/> (PostgreSQL's dshash.c), shared by every process of the
/// instance: byte keys (all of one size, or of any size up to <see cref="MaxKeyLength"/>) and values of any size.
/// The table is split in 128 partitions, each with its own lock: readers and writers of different partitions never
/// contend, readers of one partition share it. It grows by doubling its buckets, holding every partition's lock for
/// the moment it takes. For unmanaged structs use <see cref="SharedHashTable{TKey, TValue}"/>.
/// <para>Get one with <see cref="Create"/> and share <see cref="Pointer"/> (with the area's handle), or by name with
/// <see cref="DsmRegistry.GetNamedHashTable"/>.</para>
/// <para><b>Crash semantics.</b> Every operation runs under its partition's lock (and the area's, to allocate or free): a
/// process killed inside one makes the postmaster restart the instance; killed between operations, it is reconciled
/// alone and the table stays consistent for everyone else. An <see cref="Update{TState}"/> callback runs under the lock:
/// a death there is a restart too.</para>
/// <para><b>Threads.</b> Safe from any thread. Not re-entrant: an update callback must not use the table.</para>
/// </summary>
public sealed class SharedHashTable
{
    /// <summary>The default longest key of a table with keys of any length.</summary>
    public const int DefaultMaxKeyLength = Engine.SharedHashTable.DefaultMaxKeyLength;

    private readonly Engine.SharedHashTable _table;

    private SharedHashTable(Engine.SharedHashTable table) => _table = table;

    internal static SharedHashTable For(Engine.SharedHashTable table)
    {
        if (Volatile.Read(ref table.Facade) is SharedHashTable known)
            return known;
        var made = new SharedHashTable(table);
        return (SharedHashTable)(Interlocked.CompareExchange(ref table.Facade, made, null) ?? made);
    }

    internal Engine.SharedHashTable Inner => _table;

    /// <summary>Creates an empty table in <paramref name="area"/> (PostgreSQL's dshash_create).</summary>
    /// <param name="area">The area that holds it.</param>
    /// <param name="keySize">Bytes of every key; 0: keys of 1 to <paramref name="maxKeyLength"/> bytes.</param>
    /// <param name="maxKeyLength">With <paramref name="keySize"/> 0, the longest key (1 to 1048576).</param>
    public static SharedHashTable Create(SharedArea area, int keySize = 0, int maxKeyLength = DefaultMaxKeyLength)
    {
        ArgumentNullException.ThrowIfNull(area);
        return For(Engine.SharedHashTable.Create(area.Inner, keySize, maxKeyLength));
    }

    /// <summary>The table another process created in <paramref name="area"/> at <paramref name="pointer"/>
    /// (PostgreSQL's dshash_attach); validated (<see cref="ShmemCorruptException"/> when no table is there).</summary>
    /// <param name="area">The area that holds it.</param>
    /// <param name="pointer">Its <see cref="Pointer"/>.</param>
    public static SharedHashTable Attach(SharedArea area, AreaPointer pointer)
    {
        ArgumentNullException.ThrowIfNull(area);
        return For(Engine.SharedHashTable.Attach(area.Inner, new Engine.AreaPointer(pointer.Value)));
    }

    /// <summary>Where the table is in its area: give it, with the area's handle, to other processes.</summary>
    public AreaPointer Pointer => new(_table.Pointer.Value);

    /// <summary>The area that holds the table.</summary>
    public SharedArea Area => SharedArea.For(_table.Area);

    /// <summary>Bytes of every key; 0 when keys have 1 to <see cref="MaxKeyLength"/> bytes.</summary>
    public int KeySize => _table.KeySize;

    /// <summary>The longest key.</summary>
    public int MaxKeyLength => _table.MaxKeyLength;

    /// <summary>Items now (summed over the partitions without locks: exact only when nobody writes).</summary>
    public long Count => _table.Count;

    /// <summary>Buckets now (they double as the table grows).</summary>
    public long BucketCount => _table.BucketCount;

    /// <summary>The value of <paramref name="key"/>, or null when absent.</summary>
    /// <param name="key">The key.</param>
    public byte[]? Get(ReadOnlySpan<byte> key) => _table.Get(key);

    /// <summary>Copies the value of <paramref name="key"/> into <paramref name="destination"/>, as much as fits.</summary>
    /// <param name="key">The key.</param>
    /// <param name="destination">Where the value goes.</param>
    /// <returns>The value's whole length, or -1 when the key is absent.</returns>
    public int Read(ReadOnlySpan<byte> key, Span<byte> destination) => _table.Read(key, destination);

    /// <summary>True when <paramref name="key"/> is present.</summary>
    /// <param name="key">The key.</param>
    public bool ContainsKey(ReadOnlySpan<byte> key) => _table.ContainsKey(key);

    /// <summary>Inserts <paramref name="key"/> with <paramref name="value"/>, or replaces its value.</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    /// <returns>True when the key was absent.</returns>
    public bool Set(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) => _table.Set(key, value);

    /// <summary>Inserts <paramref name="key"/> only if it is absent.</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    /// <returns>False when the key was present (nothing changed).</returns>
    public bool TryAdd(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) => _table.Set(key, value, onlyIfAbsent: true);

    /// <summary>Replaces the value of <paramref name="key"/> only if it is <paramref name="comparison"/> now
    /// (ConcurrentDictionary's TryUpdate: the compare-and-set of a read-modify-write loop).</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The new value.</param>
    /// <param name="comparison">The value it must have.</param>
    /// <returns>False when the key is absent or its value differs (nothing changed).</returns>
    public bool TryUpdate(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ReadOnlySpan<byte> comparison) =>
        _table.TryUpdate(key, value, comparison);

    /// <summary>Removes <paramref name="key"/>.</summary>
    /// <param name="key">The key.</param>
    /// <returns>False when it was absent.</returns>
    public bool Remove(ReadOnlySpan<byte> key) => _table.Remove(key);

    /// <summary>Runs <paramref name="update"/> on the value of <paramref name="key"/> in place, with the partition locked
    /// exclusively (PostgreSQL's dshash_find(…, true) … dshash_release_lock). The value keeps its length.</summary>
    /// <typeparam name="TState">What <paramref name="state"/> is.</typeparam>
    /// <param name="key">The key.</param>
    /// <param name="update">Changes the bytes; must not use the table.</param>
    /// <param name="state">Passed to <paramref name="update"/>.</param>
    /// <returns>False when the key is absent.</returns>
    public bool Update<TState>(ReadOnlySpan<byte> key, SharedValueUpdater<TState> update, TState state)
    {
        ArgumentNullException.ThrowIfNull(update);
        return _table.Update(key, static (value, s) => s.update(value, s.state), (update, state));
    }

    /// <summary>Every item, copied out one partition at a time under its shared lock (PostgreSQL's dshash_seq_*).</summary>
    public IEnumerable<KeyValuePair<byte[], byte[]>> Items() => _table.Items();

    /// <summary>Frees every item and the buckets (PostgreSQL's dshash_destroy); every process's later use fails. A table the
    /// registry holds by name is destroyed by <see cref="DsmRegistry.Release"/> instead
    /// (<see cref="InvalidOperationException"/> here).</summary>
    public void Destroy() => _table.Destroy();

    /// <summary>"shared hash table POINTER of AREA".</summary>
    public override string ToString() => $"shared hash table {Pointer} of {_table.Area}";
}

/// <summary>Changes a value of a <see cref="SharedHashTable{TKey, TValue}"/> in place, under its partition's lock.</summary>
/// <typeparam name="TValue">The value type.</typeparam>
/// <param name="value">The value, in shared memory.</param>
public delegate void SharedValueRefUpdater<TValue>(ref TValue value) where TValue : unmanaged;

/// <summary>
/// A <see cref="SharedHashTable"/> of unmanaged structs: keys and values are copied as their bytes (no references;
/// use explicit layouts and integers for data another build may read). Same semantics, locks and crash rules.
/// </summary>
/// <typeparam name="TKey">The key struct.</typeparam>
/// <typeparam name="TValue">The value struct.</typeparam>
public sealed class SharedHashTable<TKey, TValue>
    where TKey : unmanaged
    where TValue : unmanaged
{
    private SharedHashTable(SharedHashTable bytes) => Bytes = bytes;

    /// <summary>Creates an empty table in <paramref name="area"/>.</summary>
    /// <param name="area">The area that holds it.</param>
    public static SharedHashTable<TKey, TValue> Create(SharedArea area) => new(SharedHashTable.Create(area, Unsafe.SizeOf<TKey>()));

    /// <summary>The table at <paramref name="pointer"/> of <paramref name="area"/>; its key size must be
    /// <typeparamref name="TKey"/>'s (<see cref="ArgumentException"/> otherwise).</summary>
    /// <param name="area">The area that holds it.</param>
    /// <param name="pointer">Its <see cref="Pointer"/>.</param>
    public static SharedHashTable<TKey, TValue> Attach(SharedArea area, AreaPointer pointer) => Wrap(SharedHashTable.Attach(area, pointer));

    internal static SharedHashTable<TKey, TValue> Wrap(SharedHashTable bytes)
    {
        if (bytes.KeySize != Unsafe.SizeOf<TKey>())
            throw new ArgumentException($"the table has keys of {bytes.KeySize} bytes; {typeof(TKey).Name} has {Unsafe.SizeOf<TKey>()}", nameof(bytes));
        return new(bytes);
    }

    /// <summary>The byte table underneath.</summary>
    public SharedHashTable Bytes { get; }

    /// <summary>Where the table is in its area.</summary>
    public AreaPointer Pointer => Bytes.Pointer;

    /// <summary>Items now (exact only when nobody writes).</summary>
    public long Count => Bytes.Count;

    /// <summary>The value of <paramref name="key"/>.</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value; default when absent.</param>
    /// <returns>False when absent.</returns>
    public bool TryGetValue(in TKey key, out TValue value)
    {
        value = default;
        int length = Bytes.Read(AsBytes(in key), AsWritableBytes(ref value));
        if (length < 0)
            return false;
        if (length != Unsafe.SizeOf<TValue>())
            throw new ShmemCorruptException($"a value of {Bytes} has {length} bytes, not {Unsafe.SizeOf<TValue>()} ({typeof(TValue).Name})");
        return true;
    }

    /// <summary>Inserts or replaces.</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    /// <returns>True when the key was absent.</returns>
    public bool Set(in TKey key, in TValue value) => Bytes.Set(AsBytes(in key), AsBytes(in value));

    /// <summary>Inserts only if absent.</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    /// <returns>False when the key was present.</returns>
    public bool TryAdd(in TKey key, in TValue value) => Bytes.TryAdd(AsBytes(in key), AsBytes(in value));

    /// <summary>Removes <paramref name="key"/>; false when absent.</summary>
    /// <param name="key">The key.</param>
    public bool Remove(in TKey key) => Bytes.Remove(AsBytes(in key));

    /// <summary>Runs <paramref name="update"/> on the value in place, under the partition's exclusive lock.</summary>
    /// <param name="key">The key.</param>
    /// <param name="update">Changes the value; must not use the table.</param>
    /// <returns>False when the key is absent.</returns>
    public bool Update(in TKey key, SharedValueRefUpdater<TValue> update)
    {
        ArgumentNullException.ThrowIfNull(update);
        return Bytes.Update(AsBytes(in key), static (bytes, u) =>
        {
            if (bytes.Length != Unsafe.SizeOf<TValue>())
                throw new ShmemCorruptException($"a value has {bytes.Length} bytes, not {Unsafe.SizeOf<TValue>()} ({typeof(TValue).Name})");
            u(ref System.Runtime.InteropServices.MemoryMarshal.AsRef<TValue>(bytes));
        }, update);
    }

    /// <summary>Every item, copied out one partition at a time.</summary>
    public IEnumerable<KeyValuePair<TKey, TValue>> Items()
    {
        foreach (var (k, v) in Bytes.Items())
            yield return new(System.Runtime.InteropServices.MemoryMarshal.Read<TKey>(k), System.Runtime.InteropServices.MemoryMarshal.Read<TValue>(v));
    }

    private static ReadOnlySpan<byte> AsBytes<T>(in T value) where T : unmanaged =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value));

    private static Span<byte> AsWritableBytes<T>(ref T value) where T : unmanaged =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(new Span<T>(ref value));
}
