namespace Postmaster.Workers;

/// <summary>What a name of the DSM registry holds (<see cref="DsmRegistryEntryInfo.Type"/>; the type column of
/// PostgreSQL 19's pg_dsm_registry_allocations). The values equal the engine's, which are stored in shared memory.</summary>
public enum DsmRegistryEntryType
{
    /// <summary>A segment (<see cref="DsmRegistry.GetNamedSegment"/>).</summary>
    Segment = 0,

    /// <summary>A shared area (<see cref="DsmRegistry.GetNamedArea"/>).</summary>
    Area = 1,

    /// <summary>A shared hash table in an area of its own (<see cref="DsmRegistry.GetNamedHashTable"/>).</summary>
    HashTable = 2,
}
