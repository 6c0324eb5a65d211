using System.Numerics;
using System.Runtime.InteropServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Layout;

namespace Postmaster.Shmem.Dsm;

/// <summary>
/// The main segment's "Preallocated DSM" region (<c>min_dynamic_shared_memory</c>): pages of
/// <see cref="PageSize"/> bytes handed out as runs to main-region DSM segments, with no system call at all
/// (PostgreSQL's FreePageManager over the same region).
/// <para><b>Overview.</b> The pages are tiled by runs, each free or allocated. Every run records its length at its
/// first and last page in <c>Tags</c> (positive = free, negative = allocated), so a freed run finds its neighbours in
/// O(1) (page first-1 is the last page of the run before it, page first+n the first page of the run after it) and
/// coalesces with whichever is free. Free runs sit in 32 size-class lists (list k holds lengths 2^k .. 2^(k+1)-1),
/// doubly linked through <c>Next</c>/<c>Prev</c> by first page, with a bit mask of non-empty lists. Allocation of n
/// pages takes the first fit among a few runs of n's own class, else the head of the lowest larger non-empty class
/// (any run there fits), else searches n's class to the end; the remainder of a split run goes back as a free run.
/// Every operation is O(1) except that last search, which runs only when nothing larger is free.</para>
/// <para><b>Layout</b> (inside the region): 256-byte header, then three int arrays of PageCount entries (Tags, Next,
/// Prev), then the pages, starting at an offset that is page-aligned from the main segment's base (so every
/// segment address is page aligned in every process). Offsets only, no addresses.</para>
/// <para><b>Lifecycle and locking.</b> Initialised (all pages free) when the main segment is laid out
/// (<see cref="Instance.InstanceLayout"/>) and reset by <see cref="DsmControl.Create"/>; attached and validated by
/// every process through <see cref="Instance.InstanceShmem"/>. Protected by: the DsmControl built-in LWLock, which
/// every caller of <see cref="Allocate"/> and <see cref="Free"/> holds. The statistics read without the lock are
/// racy snapshots.</para>
/// </summary>
internal sealed unsafe class DsmPageAllocator
{
    public const int PageSize = ShmemSize.PageSize;
    private const int Bins = 32;

    /// <summary>Runs of the request's own size class examined before a larger class is split.</summary>
    private const int SameClassProbes = 8;

    private readonly byte* _region;
    private readonly int* _tags;
    private readonly int* _next;
    private readonly int* _prev;
    private readonly byte* _pages;

    private readonly long _regionSize;

    private DsmPageAllocator(ShmemRegion region)
    {
        _region = region.Base;
        _regionSize = region.Size;
        ref var h = ref Header;
        PageCount = h.PageCount;
        _tags = (int*)(_region + h.TagsOffset);
        _next = _tags + PageCount;
        _prev = _next + PageCount;
        _pages = _region + h.PagesOffset;
    }

    /// <summary>Pages in the region.</summary>
    public int PageCount { get; }

    /// <summary>Pages not allocated (racy snapshot without the lock).</summary>
    public int FreePages => Volatile.Read(ref Header.FreePages);

    private ref DsmPageAllocatorHeader Header => ref *(DsmPageAllocatorHeader*)_region;

    /// <summary>Pages that <paramref name="bytes"/> of <c>min_dynamic_shared_memory</c> give (rounded up).</summary>
    public static int PagesFor(long bytes)
    {
        long pages = ShmemSize.AlignUp(bytes, PageSize) / PageSize;
        if (pages > int.MaxValue / 4)
            throw new ShmemException($"min_dynamic_shared_memory of {bytes} bytes is too large",
                $"At most {(long)(int.MaxValue / 4) * PageSize} bytes can be preallocated.");
        return (int)pages;
    }

    /// <summary>Bytes the region needs for <paramref name="bytes"/> of pages: header, the three arrays, one page of
    /// alignment slack, and the pages.</summary>
    public static long RequiredSize(long bytes)
    {
        int pages = PagesFor(bytes);
        long metadata = MetadataSize(pages);
        return ShmemSize.Add(ShmemSize.Add(metadata, PageSize), ShmemSize.Multiply(pages, PageSize));
    }

    private static long MetadataSize(int pages) =>
        ShmemSize.Add(DsmPageAllocatorHeader.Size, ShmemSize.Multiply(3L * sizeof(int), pages));

    /// <summary>Lays out the allocator with every page free. <paramref name="region"/> must be a slice of
    /// <paramref name="segment"/> (the whole main segment, so the pages can be aligned to its base). Creator only,
    /// before any other process can see it.</summary>
    public static DsmPageAllocator Initialize(ShmemRegion region, ShmemRegion segment, long bytes)
    {
        int pages = PagesFor(bytes);
        long needed = RequiredSize(bytes);
        if (region.Size < needed)
            throw new ArgumentException($"the preallocated DSM region needs {needed} bytes, it has {region.Size}", nameof(region));
        long regionOffset = region.Base - segment.Base;
        if (regionOffset < 0 || regionOffset > segment.Size)
            throw new ArgumentException("the preallocated DSM region is not inside the segment", nameof(region));
        long pagesOffset = ShmemSize.AlignUp(regionOffset + MetadataSize(pages), PageSize) - regionOffset;
        ref var h = ref region.Ref<DsmPageAllocatorHeader>(0);
        h = default;
        h.LayoutVersion = DsmPageAllocatorHeader.CurrentLayoutVersion;
        h.RegionSize = region.Size;
        h.PageCount = pages;
        h.TagsOffset = DsmPageAllocatorHeader.Size;
        h.PagesOffset = pagesOffset;
        var allocator = new DsmPageAllocator(region);
        allocator.Reset();
        Volatile.Write(ref h.Magic, DsmPageAllocatorHeader.ExpectedMagic);
        return allocator;
    }

    /// <summary>Validates an allocator another process initialised; <see cref="ShmemCorruptException"/> if not sane.</summary>
    public static DsmPageAllocator Attach(ShmemRegion region)
    {
        if (ValidateHeader(region) is { } problem)
            throw new ShmemCorruptException("preallocated DSM region is corrupt", problem);
        return new DsmPageAllocator(region);
    }

    /// <summary>Name used in validation results.</summary>
    public const string StructureName = "preallocated DSM region";

    private static string? ValidateHeader(ShmemRegion region)
    {
        if (region.Size < DsmPageAllocatorHeader.Size)
            return ShmemProblem.TooSmall(StructureName, region.Size, DsmPageAllocatorHeader.Size);
        var h = region.Ref<DsmPageAllocatorHeader>(0);
        if (ShmemProblem.Header(StructureName, region.Size, DsmPageAllocatorHeader.Size, h.Magic, DsmPageAllocatorHeader.ExpectedMagic,
                h.LayoutVersion, DsmPageAllocatorHeader.CurrentLayoutVersion) is { } problem)
            return problem;
        long metadata = h.PageCount >= 0 ? MetadataSize(h.PageCount) : -1;
        if (h.RegionSize != region.Size || h.PageCount < 0 || h.TagsOffset != DsmPageAllocatorHeader.Size ||
            h.PagesOffset < metadata || h.PagesOffset % 64 != 0 || h.PagesOffset + (long)h.PageCount * PageSize > region.Size ||
            (uint)h.FreePages > (uint)h.PageCount)
            return $"{StructureName}: size {h.RegionSize} of {region.Size}, {h.PageCount} pages at offset {h.PagesOffset}, " +
                   $"{h.FreePages} free do not describe the region";
        return null;
    }

    /// <summary>The header checked again (magic, version, geometry unchanged since attach, free count within the page
    /// count). Never throws. Null when valid, else the first problem.</summary>
    public string? Validate()
    {
        var region = new ShmemRegion(_region, _regionSize);
        if (ValidateHeader(region) is { } problem)
            return problem;
        if (Header.PageCount != PageCount || _pages != _region + Header.PagesOffset)
            return $"{StructureName}: page count {Header.PageCount} or pages offset {Header.PagesOffset} changed since attach";
        return null;
    }

    /// <summary>The address of page <paramref name="page"/> in this process.</summary>
    internal byte* PageAddress(int page) => _pages + (long)page * PageSize;

    /// <summary>Every page free again, as one run. Lock held, or no other process alive.</summary>
    internal void Reset()
    {
        ref var h = ref Header;
        for (int b = 0; b < Bins; b++)
            h.BinHead[b] = -1;
        h.NonEmptyBins = 0;
        h.FreePages = 0;
        if (PageCount > 0)
        {
            SetRun(0, PageCount, free: true);
            Push(0, PageCount);
            h.FreePages = PageCount;
        }
    }

    /// <summary>Allocates <paramref name="pages"/> contiguous pages; returns the first, or -1 when no free run is
    /// long enough. Lock held.</summary>
    internal int Allocate(int pages)
    {
        if (pages <= 0)
            throw new ArgumentOutOfRangeException(nameof(pages), pages, "a page run must have at least one page");
        if (pages > FreePagesLocked)
            return -1;
        ref var h = ref Header;
        int bin = BinOf(pages);
        int probes = 0;
        int run = h.BinHead[bin];
        for (; run >= 0 && probes < SameClassProbes; run = _next[run], probes++)
            if (_tags[run] >= pages)
                return Take(run, pages);
        uint larger = bin == Bins - 1 ? 0 : h.NonEmptyBins & ~((2u << bin) - 1);
        if (larger != 0)
            return Take(h.BinHead[BitOperations.TrailingZeroCount(larger)], pages);
        for (; run >= 0; run = _next[run])
            if (_tags[run] >= pages)
                return Take(run, pages);
        return -1;
    }

    /// <summary>Returns the run of <paramref name="pages"/> pages at <paramref name="first"/>, coalescing it with free
    /// neighbours. Throws <see cref="ShmemCorruptException"/> when that is not an allocated run (a double free or a
    /// corrupt item). Lock held.</summary>
    internal void Free(int first, int pages)
    {
        if (first < 0 || pages <= 0 || first > PageCount - pages || _tags[first] != -pages || _tags[first + pages - 1] != -pages)
            throw new ShmemCorruptException($"preallocated DSM pages {first}+{pages} are not an allocated run",
                first >= 0 && first < PageCount ? $"The run tag there is {_tags[first]}." : null);
        int start = first;
        int length = pages;
        if (start > 0 && _tags[start - 1] > 0)
        {
            int left = _tags[start - 1];
            start -= left;
            Unlink(start, left);
            length += left;
        }
        int after = first + pages;
        if (after < PageCount && _tags[after] > 0)
        {
            int right = _tags[after];
            Unlink(after, right);
            length += right;
        }
        SetRun(start, length, free: true);
        Push(start, length);
        Header.FreePages += pages;
    }

    /// <summary>The longest free run, in pages (walks the free lists: for tests and inspection).</summary>
    public int LargestFreeRun()
    {
        ref var h = ref Header;
        int best = 0;
        for (int b = 0; b < Bins; b++)
            for (int run = h.BinHead[b]; run >= 0; run = _next[run])
                best = Math.Max(best, _tags[run]);
        return best;
    }

    /// <summary>Number of free runs (for tests: fully coalesced free space is one run).</summary>
    public int FreeRunCount()
    {
        ref var h = ref Header;
        int n = 0;
        for (int b = 0; b < Bins; b++)
            for (int run = h.BinHead[b]; run >= 0; run = _next[run])
                n++;
        return n;
    }

    private int FreePagesLocked => Header.FreePages;

    private int Take(int run, int pages)
    {
        int length = _tags[run];
        Unlink(run, length);
        if (length > pages)
        {
            SetRun(run + pages, length - pages, free: true);
            Push(run + pages, length - pages);
        }
        SetRun(run, pages, free: false);
        Header.FreePages -= pages;
        return run;
    }

    private void SetRun(int first, int length, bool free)
    {
        int tag = free ? length : -length;
        _tags[first] = tag;
        _tags[first + length - 1] = tag;
    }

    private void Push(int first, int length)
    {
        ref var h = ref Header;
        int bin = BinOf(length);
        int head = h.BinHead[bin];
        _next[first] = head;
        _prev[first] = -1;
        if (head >= 0)
            _prev[head] = first;
        h.BinHead[bin] = first;
        h.NonEmptyBins |= 1u << bin;
    }

    private void Unlink(int first, int length)
    {
        ref var h = ref Header;
        int bin = BinOf(length);
        int next = _next[first];
        int prev = _prev[first];
        if (prev >= 0)
            _next[prev] = next;
        else
            h.BinHead[bin] = next;
        if (next >= 0)
            _prev[next] = prev;
        if (h.BinHead[bin] < 0)
            h.NonEmptyBins &= ~(1u << bin);
    }

    private static int BinOf(int pages) => BitOperations.Log2((uint)pages);
}

/// <summary>Header of the preallocated DSM region. ABI: any change bumps <see cref="CurrentLayoutVersion"/>.
/// Protected by: the DsmControl LWLock (FreePages, bins); the rest is immutable after initialisation.</summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal unsafe struct DsmPageAllocatorHeader
{
    public const int Size = 256;
    public const uint ExpectedMagic = 0x4150_4D50; // "PMPA" little-endian
    public const uint CurrentLayoutVersion = 1;

    [FieldOffset(0)] public uint Magic;
    [FieldOffset(4)] public uint LayoutVersion;
    [FieldOffset(8)] public long RegionSize;        // bytes of the whole region
    [FieldOffset(16)] public int PageCount;
    [FieldOffset(20)] public int FreePages;
    [FieldOffset(24)] public long TagsOffset;       // from the region start; Next and Prev follow
    [FieldOffset(32)] public long PagesOffset;      // from the region start; page aligned from the segment base
    [FieldOffset(40)] public uint NonEmptyBins;     // bit k: BinHead[k] is not empty
    [FieldOffset(64)] public fixed int BinHead[32]; // first page of the first free run of each size class, -1 = none
}
