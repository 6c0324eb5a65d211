using Postmaster.Shmem.Errors;
using Postmaster.Workers;

namespace KeyValue;

/// <summary>
/// The keys in shared memory, as every backend process of the instance sees them: the DSM registry's hash table
/// <see cref="TableName"/> (PostgreSQL 19's GetNamedDSHash: created once in the instance by whichever backend comes
/// first, attached by every other), in a shared area that grows by adding segments up to the configured memory limit.
/// The table locks one of its 128 partitions per operation; the mapping lasts until the process exits, so a backend
/// opens the storage once and keeps it across sessions.
/// </summary>
public sealed class SharedKvStorage : IKvStorage
{
    /// <summary>The registry name of the table.</summary>
    public const string TableName = "keyvalue.table";

    private readonly SharedHashTable _table;
    private readonly long _memoryLimit;

    private SharedKvStorage(SharedHashTable table, long memoryLimit)
    {
        _table = table;
        _memoryLimit = memoryLimit;
    }

    /// <summary>Gets (or creates) the table.</summary>
    /// <param name="context">The backend's context.</param>
    /// <param name="memoryLimit">Most bytes of keys and values (with their items' overhead) the server stores, like
    /// Redis's maxmemory: a SET beyond it is refused with Redis's OOM error.</param>
    public static SharedKvStorage Open(WorkerContext context, long memoryLimit)
    {
        var table = context.Registry.GetNamedHashTable(TableName, keySize: 0, out bool found, maxKeyLength: KvLimits.MaxKeyLength);
        string message = $"key-value table \"{TableName}\" {(found ? "attached" : "created")}: {table.Count} keys, "
            + $"{table.Area.TotalSize} bytes in {table.Area.SegmentCount} segments, memory limit {memoryLimit} bytes";
        if (found)
            context.Debug(message);
        else
            context.Log(message);
        return new SharedKvStorage(table, memoryLimit);
    }

    /// <inheritdoc />
    public int Read(ReadOnlySpan<byte> key, Span<byte> destination) => _table.Read(key, destination);

    /// <inheritdoc />
    public byte[]? Get(ReadOnlySpan<byte> key) => _table.Get(key);

    /// <inheritdoc />
    public KvStatus Set(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        if (_table.Area.AllocatedBytes + key.Length + value.Length > _memoryLimit && !_table.ContainsKey(key))
            return KvStatus.OutOfMemory;
        try
        {
            _table.Set(key, value);
            return KvStatus.Ok;
        }
        catch (ShmemException e) when (e.Message == "out of memory")
        {
            return KvStatus.OutOfMemory; // /dev/shm or the DSM slots are exhausted: nothing changed
        }
    }

    /// <inheritdoc />
    public bool? TryAdd(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        if (_table.Area.AllocatedBytes + key.Length + value.Length > _memoryLimit)
            return null;
        try
        {
            return _table.TryAdd(key, value);
        }
        catch (ShmemException e) when (e.Message == "out of memory")
        {
            return null;
        }
    }

    /// <inheritdoc />
    public bool? TryUpdate(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ReadOnlySpan<byte> comparison)
    {
        try
        {
            return _table.TryUpdate(key, value, comparison);
        }
        catch (ShmemException e) when (e.Message == "out of memory")
        {
            return null; // the new value needed a bigger block and there is no memory for it
        }
    }

    /// <inheritdoc />
    public bool Delete(ReadOnlySpan<byte> key) => _table.Remove(key);

    /// <inheritdoc />
    public long Count => _table.Count;
}
