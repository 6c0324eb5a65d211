namespace Postmaster.Workers;

/// <summary>Options of <see cref="DynamicSharedMemory.Create"/> (PostgreSQL's DSM_CREATE_* flags). The values equal
/// the engine's.</summary>
[Flags]
public enum DsmCreateFlags
{
    /// <summary>No option: a full control segment throws "too many dynamic shared memory segments".</summary>
    None = 0,

    /// <summary>Return null instead of throwing when the instance has no room for another segment
    /// (PostgreSQL's DSM_CREATE_NULL_IF_MAXSEGMENTS).</summary>
    NullIfMaxSegments = 1,

    /// <summary>Guarantee zeroed contents. Segments of their own OS object are always zero; segments carved from the
    /// preallocated region (<c>min_dynamic_shared_memory</c>) reuse pages and are cleared only with this flag.</summary>
    Zeroed = 2,
}
