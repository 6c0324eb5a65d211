using System.Globalization;
using Postmaster.Workers;

namespace KeyValue;

/// <summary>
/// The table in shared memory, as every backend process of the instance sees it: the DSM registry's segment
/// <see cref="SegmentName"/> (created and formatted exactly once in the instance, by whichever backend comes first;
/// attached by every other) and the named locks <c>keyvalue.0</c> .. <c>keyvalue.15</c>, one per partition. The
/// mapping lasts until the process exits, so a backend opens the storage once and keeps it across sessions.
/// </summary>
public sealed class SharedKvStorage : IKvStorage
{
    /// <summary>The registry name of the table's segment.</summary>
    public const string SegmentName = "keyvalue.table";

    /// <summary>The partition locks' names are this and the partition number.</summary>
    public const string LockNamePrefix = "keyvalue.";

    private readonly WorkerLocks _locks;
    private readonly LWLockHandle[] _partitionLocks;
    private readonly ShmemRegion _region;

    private SharedKvStorage(WorkerLocks locks, LWLockHandle[] partitionLocks, ShmemRegion region)
    {
        _locks = locks;
        _partitionLocks = partitionLocks;
        _region = region;
    }

    /// <summary>Gets (or creates) the table and its locks.</summary>
    /// <param name="context">The backend's context.</param>
    /// <param name="size">The segment's size: <see cref="KvTable.MinSize"/> .. <see cref="KvTable.MaxSize"/>, the same in
    /// every process (the registry refuses another size for an existing name).</param>
    /// <returns>The storage.</returns>
    public static SharedKvStorage Open(WorkerContext context, long size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, KvTable.MinSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, KvTable.MaxSize);
        var segment = context.Registry.GetNamedSegment(SegmentName, size, region => KvTable.Format(Whole(region)), out bool found);
        var table = KvTable.Attach(Whole(segment.Region)); // checks the header before first use
        var partitionLocks = new LWLockHandle[KvTable.PartitionCount];
        for (int i = 0; i < partitionLocks.Length; i++)
            partitionLocks[i] = context.NamedLock(LockNamePrefix + i.ToString(CultureInfo.InvariantCulture));
        string message = $"key-value table \"{SegmentName}\" {(found ? "attached" : "created")}: {size} bytes, "
            + $"{table.Capacity} slots in {KvTable.PartitionCount} partitions";
        if (found)
            context.Debug(message);
        else
            context.Log(message);
        return new SharedKvStorage(context.Locks, partitionLocks, segment.Region);
    }

    /// <inheritdoc />
    public KvTable Table => KvTable.Attach(Whole(_region));

    /// <inheritdoc />
    public LWLockHold Hold(int partition, LWLockMode mode) => _locks.Hold(_partitionLocks[partition], mode);

    private static Span<byte> Whole(ShmemRegion region) => region.Span(0, checked((int)region.Size));
}
