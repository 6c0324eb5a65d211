namespace Postmaster.Testing;

/// <summary>
/// <c>postmaster shmem --json</c> as a typed object: everything in the instance's shared memory (fields:
/// <c>docs/architecture.md</c>, "Inspection output"). Fields a later version adds are ignored.
/// </summary>
public sealed record ShmemReport
{
    /// <summary>The main segment's size in bytes.</summary>
    public long TotalSize { get; init; }

    /// <summary>The current DSM control segment's handle.</summary>
    public long DsmControlHandle { get; init; }

    /// <summary>The main segment's allocations, <c>pg_shmem_allocations</c> style.</summary>
    public IReadOnlyList<AllocationRow> Allocations { get; init; } = [];

    /// <summary>Every dynamic shared memory segment.</summary>
    public IReadOnlyList<DsmSegmentRow> DsmSegments { get; init; } = [];

    /// <summary>The named DSM registry's entries.</summary>
    public IReadOnlyList<RegistryRow> Registry { get; init; } = [];

    /// <summary>Lock tranches with their holders and waiters.</summary>
    public IReadOnlyList<LockTrancheRow> LockTranches { get; init; } = [];

    /// <summary>Backend slots in use.</summary>
    public IReadOnlyList<BackendSlotRow> BackendSlots { get; init; } = [];
}
