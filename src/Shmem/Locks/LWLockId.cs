namespace Postmaster.Shmem.Locks;

/// <summary>
/// A lock's identity, the same in every process: the segment it lives in (<see cref="LWLockSegment.MainSegmentId"/>
/// for the main segment, the DSM handle otherwise) and its byte offset from that segment's base. Addresses differ
/// between processes; this does not, so it is what owner records store.
/// </summary>
internal readonly record struct LWLockId(uint SegmentId, long Offset)
{
    public override string ToString() => $"segment {SegmentId} offset {Offset}";
}
