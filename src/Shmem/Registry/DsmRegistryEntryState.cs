namespace Postmaster.Shmem.Registry;

/// <summary>
/// Where a name of the DSM registry stands. Values are an ABI (stored in shared memory): append only, and bump
/// <see cref="DsmRegistryHeader.CurrentLayoutVersion"/> on any change.
/// <code>
///   Free ──get──► Initialising(pid) ──initialised, pinned, published──► Ready ──Release──► Releasing(pid) ──► Free
///                   │          ▲
///        init threw │          │ the next caller takes over (also from Initialising or Releasing
///                   ▼          │ whose owner is dead: a waiter notices)
///                 Failed ──────┘
/// </code>
/// </summary>
internal enum DsmRegistryEntryState : int
{
    /// <summary>The entry is unused (no name).</summary>
    Free = 0,

    /// <summary>A process (<see cref="DsmRegistryEntryInfo.OwnerPid"/>) is creating the segment and running the
    /// initialiser; callers of the name wait. If that process dies, a caller takes the entry over.</summary>
    Initialising = 1,

    /// <summary>The segment is initialised, pinned and published: callers attach it (found = true).</summary>
    Ready = 2,

    /// <summary>The last initialisation threw; the next caller initialises again (PostgreSQL 18's retry).</summary>
    Failed = 3,

    /// <summary>A process is dropping the entry (<see cref="DsmRegistry.Release"/>); callers of the name wait, then
    /// create it anew.</summary>
    Releasing = 4,
}
