namespace Postmaster.Shmem.Locks;

/// <summary>
/// This process's reference to one lock in shared memory: its address here plus its cross-process
/// <see cref="LWLockId"/>. Obtained from <see cref="LWLockSegment.Lock"/>, <see cref="LWLockSegment.InitializeLock"/>
/// or <see cref="LWLockTrancheTable.Builtin"/>; valid while the segment stays mapped. Copying it is cheap and safe;
/// it is never stored in shared memory (store <see cref="Id"/> or the offset instead). Locking goes through a
/// <see cref="LockOwner"/>.
/// </summary>
internal readonly unsafe struct LWLockHandle : IEquatable<LWLockHandle>
{
    private readonly LWLock* _lock;
    private readonly ushort _trancheId;
    private readonly ulong _recordTag;

    internal LWLockHandle(LWLock* lwlock, uint segmentId, long offset, ushort trancheId)
    {
        _lock = lwlock;
        SegmentId = segmentId;
        Offset = offset;
        _trancheId = trancheId;
        _recordTag = HeldLockEntry.MakeTag(segmentId, trancheId);
    }

    public uint SegmentId { get; }

    public long Offset { get; }

    /// <summary>The lock's tranche (cached: immutable after initialisation).</summary>
    public int TrancheId => _trancheId;

    public LWLockId Id => new(SegmentId, Offset);

    public bool IsNull => _lock == null;

    internal ref LWLock Lock => ref *_lock;

    internal LWLock* Address => _lock;

    /// <summary>Segment id and tranche id as an owner-record entry's <see cref="HeldLockEntry.Tag"/> holds them.</summary>
    internal ulong RecordTag => _recordTag;

    /// <summary>A racy snapshot of the lock's state and exclusive owner (see <see cref="LWLockStatus"/>).</summary>
    public LWLockStatus ReadStatus()
    {
        long owner = Volatile.Read(ref _lock->ExclusiveOwner);
        return LWLockStatus.Decode(Volatile.Read(ref _lock->State), pid: (int)owner, slot: (int)(owner >> 32));
    }

    public bool Equals(LWLockHandle other) => SegmentId == other.SegmentId && Offset == other.Offset;

    public override bool Equals(object? obj) => obj is LWLockHandle other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(SegmentId, Offset);

    public static bool operator ==(LWLockHandle left, LWLockHandle right) => left.Equals(right);

    public static bool operator !=(LWLockHandle left, LWLockHandle right) => !left.Equals(right);

    public override string ToString() => Id.ToString();
}
