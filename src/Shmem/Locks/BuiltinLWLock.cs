namespace Postmaster.Shmem.Locks;

/// <summary>
/// The individual built-in locks, one per shared subsystem, living in the <see cref="LWLockTrancheTable"/>. Each is
/// also its own tranche: tranche id = the enum value, tranche name = the member name. Values are an ABI (stored in
/// shared memory): append new members at the end and bump <see cref="LWLockTrancheTable"/>'s layout version.
/// </summary>
internal enum BuiltinLWLock : ushort
{
    /// <summary>The main segment's index of named structures.</summary>
    ShmemIndex = 0,

    /// <summary>The DSM control segment's slot table.</summary>
    DsmControl = 1,

    /// <summary>The DSM registry (name → segment).</summary>
    DsmRegistry = 2,

    /// <summary>The backend/process slot pool.</summary>
    BackendSlots = 3,

    /// <summary>Registration of new names in the tranche table itself.</summary>
    TrancheTable = 4,
}
