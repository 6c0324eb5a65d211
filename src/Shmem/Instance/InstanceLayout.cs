using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Layout;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Registry;

namespace Postmaster.Shmem.Instance;

/// <summary>Sizes that decide the main segment's layout; identical in the creator and every attaching process.</summary>
/// <param name="DsmMainRegionSize"><c>min_dynamic_shared_memory</c>: bytes of pages reserved for main-region DSM
/// segments (0 = none).</param>
/// <param name="DsmRegistryCapacity">Names the DSM registry can hold at once (1..<see cref="DsmRegistryTable.MaxCapacity"/>).</param>
internal sealed record InstanceLimits(int MaxBackends, long FreeSpace, int TrancheCapacity = InstanceLayout.DefaultTrancheCapacity,
    long DsmMainRegionSize = 0, int DsmRegistryCapacity = DsmRegistryTable.DefaultCapacity);

/// <summary>
/// The main segment's modules, in creation order (PostgreSQL's ipci.c): the lock tranche table with the built-in
/// locks, the per-backend lock owner records, the backend slots, the worker request queue, the DSM registry's name
/// table, and (when min_dynamic_shared_memory &gt; 0) the preallocated DSM region with its page allocator.
/// <see cref="Plan"/> declares their sizes so the segment is sized exactly; <see cref="InstanceShmem.Attach"/> finds
/// them again by name in any process.
/// </summary>
internal static class InstanceLayout
{
    public const int DefaultTrancheCapacity = 256;
    public const string TrancheTableName = "LWLock tranches";
    public const string OwnerTableName = "LWLock owner records";
    public const string BackendSlotsName = "Backend slots";
    public const string WorkerRequestsName = "Worker requests";
    public const string DsmMainRegionName = "Preallocated DSM";
    public const string DsmRegistryName = "DSM registry";
    public const string WorkerStatusName = "Worker status";

    public static ShmemPlan Plan(InstanceLimits limits, IEnumerable<ShmemRequest>? more = null)
    {
        var plan = new ShmemPlan(limits.FreeSpace);
        plan.Add(new ShmemRequest(TrancheTableName, LWLockTrancheTable.RequiredSize(limits.TrancheCapacity),
            (r, seg) => LWLockTrancheTable.Initialize(r, LWLockSegment.Main(seg), limits.TrancheCapacity)));
        plan.Add(new ShmemRequest(OwnerTableName, LWLockOwnerTable.RequiredSize(limits.MaxBackends),
            (r, _) => LWLockOwnerTable.Initialize(r, limits.MaxBackends)));
        plan.Add(new ShmemRequest(BackendSlotsName, BackendSlotArray.RequiredSize(limits.MaxBackends),
            (r, _) => BackendSlotArray.Initialize(r, limits.MaxBackends)));
        plan.Add(new ShmemRequest(WorkerRequestsName, WorkerRequestQueue.RequiredSize(WorkerRequestQueue.DefaultCapacity),
            (r, _) => WorkerRequestQueue.Initialize(r, WorkerRequestQueue.DefaultCapacity)));
        plan.Add(new ShmemRequest(DsmRegistryName, DsmRegistryTable.RequiredSize(limits.DsmRegistryCapacity),
            (r, _) => DsmRegistryTable.Initialize(r, limits.DsmRegistryCapacity)));
        plan.Add(new ShmemRequest(InstanceCounters.Name, InstanceCounters.Bytes, (r, _) => InstanceCounters.Initialize(r)));
        plan.Add(new ShmemRequest(WorkerStatusName, WorkerStatusTable.RequiredSize(limits.MaxBackends),
            (r, _) => WorkerStatusTable.Initialize(r, limits.MaxBackends)));
        if (limits.DsmMainRegionSize > 0)
            plan.Add(new ShmemRequest(DsmMainRegionName, DsmPageAllocator.RequiredSize(limits.DsmMainRegionSize),
                (r, seg) => DsmPageAllocator.Initialize(r, seg, limits.DsmMainRegionSize)));
        foreach (var r in more ?? Array.Empty<ShmemRequest>())
            plan.Add(r);
        return plan;
    }
}
