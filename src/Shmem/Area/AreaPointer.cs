namespace Postmaster.Shmem.Area;

/// <summary>
/// A position in a <see cref="SharedArea"/> that means the same in every process (PostgreSQL's dsa_pointer): the
/// index of the area's segment in the high bits and the byte offset in that segment in the low
/// <see cref="OffsetBits"/> bits. Stored in shared memory as a plain <c>ulong</c>; 0 is the null pointer (offset 0 of
/// segment 0 is the segment header, never handed out).
/// </summary>
internal readonly record struct AreaPointer(ulong Value)
{
    /// <summary>Bits of the offset: segments of up to 1 TB.</summary>
    public const int OffsetBits = 40;

    private const ulong OffsetMask = (1UL << OffsetBits) - 1;

    /// <summary>The null pointer.</summary>
    public static readonly AreaPointer Null = default;

    public bool IsNull => Value == 0;

    /// <summary>The segment's index in the area (0 .. <see cref="SharedArea.MaxSegments"/> - 1).</summary>
    public int SegmentIndex => (int)(Value >> OffsetBits);

    /// <summary>Bytes from the start of that segment.</summary>
    public long Offset => (long)(Value & OffsetMask);

    public static AreaPointer Make(int segmentIndex, long offset) =>
        new(((ulong)(uint)segmentIndex << OffsetBits) | ((ulong)offset & OffsetMask));

    /// <summary>The pointer <paramref name="delta"/> bytes further into the same segment.</summary>
    public AreaPointer Add(long delta) => Make(SegmentIndex, Offset + delta);

    public override string ToString() => IsNull ? "null" : $"{SegmentIndex}:{Offset}";
}
