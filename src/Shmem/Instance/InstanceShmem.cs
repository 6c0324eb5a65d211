using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Registry;

namespace Postmaster.Shmem.Instance;

/// <summary>
/// The instance's main segment as one process sees it: the segment plus its modules, found by name in the index
/// and validated. The postmaster gets one from <see cref="Wrap"/> right after creating the segment; backends,
/// tools and tests from <see cref="Attach"/>. Disposing detaches (it never destroys: that is the postmaster's job).
/// </summary>
internal sealed class InstanceShmem : IDisposable
{
    /// <summary>Where each module was found at attach, in <see cref="Validate"/>'s order (the last one is default
    /// without a preallocated DSM region).</summary>
    private readonly ShmemRegion[] _placements;

    private InstanceShmem(MainSegment main, LWLockTrancheTable tranches, LWLockOwnerTable owners, BackendSlotArray slots,
        WorkerRequestQueue requests, DsmRegistryTable dsmRegistryTable, DsmPageAllocator? dsmMainRegion,
        WorkerStatusTable workerStatus, ShmemRegion[] placements)
    {
        WorkerStatus = workerStatus;
        _placements = placements;
        DsmRegistryTable = dsmRegistryTable;
        Requests = requests;
        Main = main;
        Tranches = tranches;
        Owners = owners;
        Slots = slots;
        DsmMainRegion = dsmMainRegion;
    }

    public MainSegment Main { get; }

    public LWLockTrancheTable Tranches { get; }

    public LWLockOwnerTable Owners { get; }

    public BackendSlotArray Slots { get; }

    public WorkerRequestQueue Requests { get; }

    /// <summary>The static workers as the postmaster last published them (for <c>status</c>).</summary>
    public WorkerStatusTable WorkerStatus { get; }

    /// <summary>The DSM registry's shared name table ("DSM registry"). Backends use it through a
    /// <see cref="DsmRegistry"/>; inspection lists it with <see cref="DsmRegistryTable.List"/>.</summary>
    public DsmRegistryTable DsmRegistryTable { get; }

    /// <summary>The "Preallocated DSM" page allocator, or null when min_dynamic_shared_memory is 0.</summary>
    public DsmPageAllocator? DsmMainRegion { get; }

    public LWLockSegment LockSegment => LWLockSegment.Main(Main.Region);

    /// <summary>Finds and validates every module of an attached (or just created) main segment.</summary>
    public static InstanceShmem Wrap(MainSegment main)
    {
        ShmemRegion Find(string name) => main.Index.TryFind(name, out var r)
            ? r : throw new ShmemCorruptException($"{Layout.ShmemIndex.StructureName}: \"{name}\" is missing");
        var placements = new[]
        {
            Find(InstanceLayout.TrancheTableName), Find(InstanceLayout.OwnerTableName), Find(InstanceLayout.BackendSlotsName),
            Find(InstanceLayout.WorkerRequestsName), Find(InstanceLayout.DsmRegistryName),
            main.Index.TryFind(InstanceLayout.DsmMainRegionName, out var dsm) ? dsm : default,
            Find(InstanceLayout.WorkerStatusName),
        };
        return new InstanceShmem(main,
            LWLockTrancheTable.Attach(placements[0], LWLockSegment.Main(main.Region)),
            LWLockOwnerTable.Attach(placements[1]),
            BackendSlotArray.Attach(placements[2]),
            WorkerRequestQueue.Attach(placements[3]),
            DsmRegistryTable.Attach(placements[4]),
            placements[5].IsNull ? null : DsmPageAllocator.Attach(placements[5]),
            WorkerStatusTable.Attach(placements[6]),
            placements);
    }

    /// <summary>Attaches the running instance's main segment (child processes, inspection) and validates it.</summary>
    public static InstanceShmem Attach(Segments.SegmentKind kind, long key, long id, Os.FileStat dataDir)
    {
        var main = MainSegment.Attach(kind, key, id, dataDir);
        try
        {
            return Wrap(main);
        }
        catch
        {
            main.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Checks everything the supervisor depends on, in the order a reader trusts it, and returns the first problem
    /// (null when all is valid): the main header (magic, version, sizes, offsets, data directory), the index
    /// (magic, version, counts, every entry inside the allocated space), that each module's index entry still names
    /// the space found at attach, and each module's own checks (lock tranches, lock owner records, backend slots,
    /// worker requests, DSM registry, preallocated DSM). Reads headers and a few words per slot or entry: cheap enough
    /// to call after every backend crash. Never throws (a ShmemCorruptException from a lookup is reported as the
    /// problem). The DSM control segment is separate: <see cref="DsmControl.Validate"/>.
    /// </summary>
    public string? Validate()
    {
        try
        {
            return Main.Validate()
                   ?? Placement(InstanceLayout.TrancheTableName, _placements[0]) ?? Tranches.Validate()
                   ?? Placement(InstanceLayout.OwnerTableName, _placements[1]) ?? Owners.Validate()
                   ?? Placement(InstanceLayout.BackendSlotsName, _placements[2]) ?? Slots.Validate()
                   ?? Placement(InstanceLayout.WorkerRequestsName, _placements[3]) ?? Requests.Validate()
                   ?? Placement(InstanceLayout.DsmRegistryName, _placements[4]) ?? DsmRegistryTable.Validate()
                   ?? Placement(InstanceLayout.WorkerStatusName, _placements[6]) ?? WorkerStatus.Validate()
                   ?? (DsmMainRegion is null ? null
                       : Placement(InstanceLayout.DsmMainRegionName, _placements[5]) ?? DsmMainRegion.Validate());
        }
        catch (ShmemCorruptException e)
        {
            return e.Detail is null ? e.Message : $"{e.Message}: {e.Detail}";
        }
    }

    /// <summary>Whether the index still maps <paramref name="name"/> to the region found at attach.</summary>
    private unsafe string? Placement(string name, ShmemRegion found)
    {
        if (!Main.Index.TryFind(name, out var now))
            return $"{Layout.ShmemIndex.StructureName}: \"{name}\" is missing";
        long offsetNow = now.Base - Main.Region.Base, offsetFound = found.Base - Main.Region.Base;
        if (offsetNow != offsetFound || now.Size != found.Size)
            return $"{Layout.ShmemIndex.StructureName}: \"{name}\" now names offset {offsetNow} ({now.Size} bytes) " +
                   $"instead of {offsetFound} ({found.Size} bytes), where it was found";
        return null;
    }

    public void Dispose() => Main.Dispose();
}
