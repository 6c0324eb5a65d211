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
public sealed class InstanceShmem : IDisposable
{
    private InstanceShmem(MainSegment main, LWLockTrancheTable tranches, LWLockOwnerTable owners, BackendSlotArray slots,
        WorkerRequestQueue requests, DsmRegistryTable dsmRegistryTable, DsmPageAllocator? dsmMainRegion,
        WorkerStatusTable workerStatus)
    {
        WorkerStatus = workerStatus;
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
            ? r : throw new ShmemCorruptException($"shared memory structure \"{name}\" is missing from the index");
        return new InstanceShmem(main,
            LWLockTrancheTable.Attach(Find(InstanceLayout.TrancheTableName), LWLockSegment.Main(main.Region)),
            LWLockOwnerTable.Attach(Find(InstanceLayout.OwnerTableName)),
            BackendSlotArray.Attach(Find(InstanceLayout.BackendSlotsName)),
            WorkerRequestQueue.Attach(Find(InstanceLayout.WorkerRequestsName)),
            DsmRegistryTable.Attach(Find(InstanceLayout.DsmRegistryName)),
            main.Index.TryFind(InstanceLayout.DsmMainRegionName, out var dsm) ? DsmPageAllocator.Attach(dsm) : null,
            WorkerStatusTable.Attach(Find(InstanceLayout.WorkerStatusName)));
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

    public void Dispose() => Main.Dispose();
}
