namespace Postmaster.Shmem.Layout;

/// <summary>A module's request for space in the main segment (PostgreSQL's size/init pair).</summary>
/// <param name="Name">Index name, at most <see cref="ShmemIndex.MaxNameBytes"/> bytes.</param>
/// <param name="Size">Bytes needed.</param>
/// <param name="Initialize">Runs once in the creating process on the zeroed space (first argument) of the whole
/// segment (second argument: offsets inside shared structures are from the segment base); null for plain space.</param>
internal sealed record ShmemRequest(string Name, long Size, Action<ShmemRegion, ShmemRegion>? Initialize = null);

/// <summary>One part of the main segment's size (a class, not a tuple: generic code over structs is not precompiled).</summary>
internal sealed record ShmemPart(string Part, long Bytes);

/// <summary>
/// Collects the modules' requests and computes the segment size exactly (overflow-checked), PostgreSQL's
/// CalculateShmemSize without the fudge: header + index + every request cache-line aligned + the free space for
/// run-time named allocations, rounded up to the page size.
/// </summary>
internal sealed class ShmemPlan
{
    /// <summary>Index slots beyond the modules' own, for run-time named allocations.</summary>
    public const int ExtraIndexEntries = 64;

    private readonly List<ShmemRequest> _requests = new();

    public ShmemPlan(long freeSpace)
    {
        if (freeSpace < 0)
            throw new ArgumentOutOfRangeException(nameof(freeSpace));
        FreeSpace = freeSpace;
    }

    public long FreeSpace { get; }

    public IReadOnlyList<ShmemRequest> Requests => _requests;

    public int IndexCapacity => _requests.Count + ExtraIndexEntries;

    public ShmemPlan Add(ShmemRequest request)
    {
        if (_requests.Any(r => r.Name == request.Name))
            throw new ArgumentException($"shared memory request \"{request.Name}\" is declared twice");
        if (request.Size < 0)
            throw new ArgumentOutOfRangeException(nameof(request), $"request \"{request.Name}\" has negative size {request.Size}");
        _requests.Add(request);
        return this;
    }

    /// <summary>Per-part sizes in creation order: header, index, each request, free space.</summary>
    public IReadOnlyList<ShmemPart> Breakdown()
    {
        var parts = new List<ShmemPart>
        {
            new("<header>", ShmemSize.CacheLineAlign(MainHeader.Size)),
            new("<index>", ShmemSize.CacheLineAlign(ShmemIndex.RequiredSize(IndexCapacity))),
        };
        foreach (var r in _requests)
            parts.Add(new ShmemPart(r.Name, ShmemSize.CacheLineAlign(r.Size)));
        parts.Add(new ShmemPart("<free space>", ShmemSize.CacheLineAlign(FreeSpace)));
        return parts;
    }

    /// <summary>The total, page aligned. Throws a ShmemException on overflow.</summary>
    public long TotalSize(long alignment = ShmemSize.PageSize)
    {
        long total = 0;
        foreach (var part in Breakdown())
            total = ShmemSize.Add(total, part.Bytes);
        return ShmemSize.AlignUp(total, alignment);
    }
}
