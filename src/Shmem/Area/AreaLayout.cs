using System.Runtime.InteropServices;
using Postmaster.Shmem.Locks;

namespace Postmaster.Shmem.Area;

/// <summary>
/// Header at offset 0 of every segment of a <see cref="SharedArea"/>. ABI: any layout change bumps
/// <see cref="CurrentLayoutVersion"/>. Written by the segment's creator under the area lock before the segment's handle
/// is published in the control; immutable afterwards; its page map, spans and free bitmap change under the area lock.
/// Every process validates it when it maps the segment.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct AreaSegmentHeader
{
    public const int Size = 64;
    public const uint ExpectedMagic = 0x5341_4D50; // "PMAS" little-endian
    public const uint CurrentLayoutVersion = 1;

    [FieldOffset(0)] public uint Magic;
    [FieldOffset(4)] public uint LayoutVersion;
    [FieldOffset(8)] public long SegmentSize;    // bytes, = the DSM segment's size
    [FieldOffset(16)] public int Index;          // this segment's index in the area
    [FieldOffset(20)] public int PageCount;      // SegmentSize / PageSize; pages [0, FirstPage) hold metadata
    [FieldOffset(24)] public int FirstPage;      // the first page that can be allocated
    [FieldOffset(28)] public int Reserved;
    [FieldOffset(32)] public long PageMapOffset; // int per page: first page of its span + 1, 0 = in no span
    [FieldOffset(40)] public long SpansOffset;   // AreaSpan per page; meaningful at a span's first page
    [FieldOffset(48)] public long BitmapOffset;  // ulong words, bit set = page free
    [FieldOffset(56)] public uint AreaId;        // the area's control segment handle: a segment of another area fails
}

/// <summary>
/// The area's control data, in its first segment right after the segment header. ABI: any layout change bumps
/// <see cref="CurrentLayoutVersion"/>. Protected by: <see cref="Lock"/> (the area lock) for every field but the
/// immutable ones (magic, version, sizes, limits set at creation, <see cref="TrancheId"/>); <see cref="SegmentCount"/>
/// and <see cref="Handles"/> are also read without it (written with release semantics, handle before count).
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal unsafe struct AreaControl
{
    public const int Size = FreePagesOffset + SharedArea.MaxSegments * sizeof(int);
    public const int ClassHeadsOffset = 192;
    public const int HandlesOffset = ClassHeadsOffset + AreaSizeClasses.Count * sizeof(ulong);
    public const int FreePagesOffset = HandlesOffset + SharedArea.MaxSegments * sizeof(uint);
    public const uint ExpectedMagic = 0x4341_4D50; // "PMAC" little-endian
    public const uint CurrentLayoutVersion = 1;

    [FieldOffset(0)] public uint Magic;
    [FieldOffset(4)] public uint LayoutVersion;
    [FieldOffset(8)] public long StructSize;        // = Size when written
    [FieldOffset(16)] public int SegmentCount;      // segments [0, SegmentCount) exist
    [FieldOffset(20)] public int MaxSegmentsField;  // = SharedArea.MaxSegments when written
    [FieldOffset(24)] public int Destroyed;         // 1 once the area was destroyed: every operation refuses
    [FieldOffset(28)] public int TrancheId;         // the area lock's tranche
    [FieldOffset(32)] public long InitialSegmentSize;
    [FieldOffset(40)] public long MaxSegmentSize;
    [FieldOffset(48)] public long SizeLimit;        // most bytes of segments in all
    [FieldOffset(56)] public long TotalSize;        // bytes of segments now
    [FieldOffset(64)] public LWLock Lock;           // 64 bytes; offset 128 in the segment: a cache line
    [FieldOffset(128)] public ulong Root;           // a pointer the area's user keeps here (a named hash table's control)
    [FieldOffset(136)] public long AllocatedBytes;  // bytes handed out and not freed (class-rounded)
    [FieldOffset(144)] public long Allocations;     // blocks handed out and not freed
    [FieldOffset(152)] public uint ControlHandle;   // this segment's DSM handle (= every segment's AreaId)
    [FieldOffset(156)] public int RootKind;         // what Root points to (0 none, 1 hash table)
    [FieldOffset(160)] public int RegistryEntry;    // the DSM registry entry's index + 1 for a named area; 0: not named
    [FieldOffset(ClassHeadsOffset)] public fixed ulong ClassHeads[AreaSizeClasses.Count]; // first span with free objects
    [FieldOffset(HandlesOffset)] public fixed uint Handles[SharedArea.MaxSegments];         // DSM handle per segment
    [FieldOffset(FreePagesOffset)] public fixed int FreePages[SharedArea.MaxSegments];      // free pages per segment
}

/// <summary>
/// One span: a run of pages that is either one large block or a superblock of equal-size objects of one size class.
/// Stored in the segment's span array at the span's first page. Protected by: the area lock.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct AreaSpan
{
    public const int Size = 48;

    [FieldOffset(0)] public int PageCount;
    [FieldOffset(4)] public int SizeClass;   // 0 = one large block; 1..Count = size class + 1
    [FieldOffset(8)] public int ObjectSize;  // bytes per object (large: the pages' bytes)
    [FieldOffset(12)] public int Capacity;   // objects in the span
    [FieldOffset(16)] public int FreeCount;  // objects not handed out
    [FieldOffset(20)] public int FreeHead;   // first freed object's index + 1; 0 = none (the rest come from BumpNext)
    [FieldOffset(24)] public int BumpNext;   // objects [BumpNext, Capacity) were never handed out
    [FieldOffset(32)] public ulong Next;     // next span of the class with free objects (pointer to its first page)
    [FieldOffset(40)] public ulong Prev;     // previous one; 0 at the list head
}

/// <summary>The small-object size classes: requests up to <see cref="MaxSmall"/> bytes are rounded up to one of these
/// and carved from 64 kB superblocks; larger ones are whole pages.</summary>
internal static class AreaSizeClasses
{
    public const int Count = 32;
    public const int MaxSmall = 8192;
    public const int SuperblockPages = 16;

    private static readonly int[] s_sizes =
    [
        16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512,
        640, 768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
    ];

    /// <summary>Objects of class <paramref name="index"/> are this many bytes.</summary>
    public static int SizeOf(int index) => s_sizes[index];

    /// <summary>The smallest class that holds <paramref name="size"/> bytes (1 .. <see cref="MaxSmall"/>).</summary>
    public static int ClassFor(long size)
    {
        if (size <= 128)
            return (int)((size + 15) >> 4) - 1; // classes 0..7 are 16..128 in steps of 16
        int lo = 8, hi = Count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi) >> 1;
            if (s_sizes[mid] >= size)
                hi = mid;
            else
                lo = mid + 1;
        }
        return lo;
    }
}
