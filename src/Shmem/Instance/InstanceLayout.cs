using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Layout;
using Postmaster.Shmem.Locks;

namespace Postmaster.Shmem.Instance;

/// <summary>Sizes that decide the main segment's layout; identical in the creator and every attaching process.</summary>
public sealed record InstanceLimits(int MaxBackends, long FreeSpace, int TrancheCapacity = InstanceLayout.DefaultTrancheCapacity);

/// <summary>
/// The main segment's modules, in creation order (PostgreSQL's ipci.c): the lock tranche table with the built-in
/// locks, the per-backend lock owner records, and the backend slots. <see cref="Plan"/> declares their sizes so the
/// segment is sized exactly; <see cref="InstanceShmem.Attach"/> finds them again by name in any process.
/// </summary>
public static class InstanceLayout
{
    public const int DefaultTrancheCapacity = 256;
    public const string TrancheTableName = "LWLock tranches";
    public const string OwnerTableName = "LWLock owner records";
    public const string BackendSlotsName = "Backend slots";
    public const string WorkerRequestsName = "Worker requests";

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
        foreach (var r in more ?? Array.Empty<ShmemRequest>())
            plan.Add(r);
        return plan;
    }
}
