using Postmaster.Shmem.Errors;

namespace Postmaster.Shmem.Locks;

/// <summary>
/// A shared segment as this process sees it, for the purpose of placing and finding locks: the segment's
/// cross-process id (<see cref="MainSegmentId"/> for the main segment, the DSM handle for a DSM segment) and its
/// whole mapping here. Locks are named by (id, offset from the segment base), never by address, because every
/// process maps the segment at its own address. A value type with no resources: the segment object that created
/// the mapping owns it.
/// </summary>
internal readonly unsafe struct LWLockSegment
{
    /// <summary>The id of the main segment; DSM handles are never 0 (DsmHandle.Invalid).</summary>
    public const uint MainSegmentId = 0;

    /// <summary>Bytes one lock occupies, and the alignment its offset must have (a cache line).</summary>
    public const int LockSize = LWLock.Size;

    /// <summary>Tranche ids must fit the 16 bits that owner records keep.</summary>
    public const int MaxTrancheId = ushort.MaxValue;

    /// <param name="id">The segment's cross-process id.</param>
    /// <param name="region">The WHOLE segment as mapped in this process (offsets are measured from its base).</param>
    public LWLockSegment(uint id, ShmemRegion region)
    {
        if (region.IsNull)
            throw new ArgumentException("the segment region is not mapped", nameof(region));
        Id = id;
        Region = region;
    }

    public uint Id { get; }

    public ShmemRegion Region { get; }

    /// <summary>The main segment, mapped at <paramref name="region"/>.</summary>
    public static LWLockSegment Main(ShmemRegion region) => new(MainSegmentId, region);

    /// <summary>Bytes needed for <paramref name="count"/> consecutive locks.</summary>
    public static long RequiredSize(int count) =>
        count < 0 ? throw new ArgumentOutOfRangeException(nameof(count)) : (long)count * LockSize;

    /// <summary>Writes a fresh, free lock of tranche <paramref name="trancheId"/> at <paramref name="offset"/>. Only
    /// the creator of the surrounding structure calls this, before publishing the structure to other processes;
    /// re-initialising a lock that someone holds or waits for breaks it.</summary>
    public LWLockHandle InitializeLock(long offset, int trancheId)
    {
        CheckOffset(offset);
        if ((uint)trancheId > MaxTrancheId)
            throw new ArgumentOutOfRangeException(nameof(trancheId), trancheId, $"a tranche id must be 0..{MaxTrancheId}");
        ref var l = ref Region.Ref<LWLock>(offset);
        l = default;
        l.TrancheId = trancheId;
        l.ExclusiveOwner = LWLock.NoExclusiveOwner;
        Volatile.Write(ref l.Magic, LWLock.ExpectedMagic);
        return new LWLockHandle((LWLock*)Region.Pointer(offset), Id, offset, (ushort)trancheId);
    }

    /// <summary>Initialises <paramref name="count"/> consecutive locks of one tranche from <paramref name="offset"/>.</summary>
    public void InitializeLocks(long offset, int count, int trancheId)
    {
        for (int i = 0; i < count; i++)
            InitializeLock(offset + (long)i * LockSize, trancheId);
    }

    /// <summary>A handle on the lock at <paramref name="offset"/>, which another process initialised. Throws
    /// <see cref="ShmemCorruptException"/> when no initialised lock is there (wrong offset or overwritten memory).</summary>
    public LWLockHandle Lock(long offset)
    {
        CheckOffset(offset);
        ref var l = ref Region.Ref<LWLock>(offset);
        if (Volatile.Read(ref l.Magic) != LWLock.ExpectedMagic)
            throw new ShmemCorruptException($"no lightweight lock at offset {offset} of segment {Id}",
                $"Found magic 0x{l.Magic:X8}, expected 0x{LWLock.ExpectedMagic:X8}.");
        int tranche = l.TrancheId;
        if ((uint)tranche > MaxTrancheId)
            throw new ShmemCorruptException($"lightweight lock at offset {offset} of segment {Id} has invalid tranche id {tranche}");
        return new LWLockHandle((LWLock*)Region.Pointer(offset), Id, offset, (ushort)tranche);
    }

    /// <summary>The offset of <paramref name="inner"/> (a slice of this segment) from the segment base.</summary>
    public long OffsetOf(ShmemRegion inner)
    {
        long offset = inner.Base - Region.Base;
        if (inner.IsNull || offset < 0 || offset > Region.Size || inner.Size > Region.Size - offset)
            throw new ArgumentException($"the region is not inside segment {Id}", nameof(inner));
        return offset;
    }

    private void CheckOffset(long offset)
    {
        if (offset < 0 || offset % LockSize != 0)
            throw new ArgumentOutOfRangeException(nameof(offset), offset,
                $"a lock offset must be a non-negative multiple of {LockSize} (one cache line)");
    }
}
