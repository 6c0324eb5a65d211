namespace Postmaster.Workers;

/// <summary>One name of the DSM registry (<see cref="DsmRegistry.List"/>; PostgreSQL's pg_dsm_registry_allocations).</summary>
/// <param name="Name">The registered name.</param>
/// <param name="State">Where the name stands.</param>
/// <param name="Handle">The published segment (Ready); <see cref="DsmHandle.Invalid"/> otherwise.</param>
/// <param name="Size">The segment's size in bytes (Initialising, Ready).</param>
/// <param name="OwnerPid">Initialising or Releasing: the process doing it (it may have died: callers take over).</param>
/// <param name="InitialisedByPid">Ready: the process that ran the initialiser; Failed: the one whose initialiser threw.</param>
/// <param name="Attempts">Initialisations started since the name was registered (1 unless one failed or died).</param>
/// <param name="Waiters">Callers sleeping until the name's state changes (a racy count).</param>
/// <param name="Changed">When the state last changed.</param>
/// <param name="Type">What the name holds: a segment, a shared area or a shared hash table.</param>
/// <param name="TotalSize">Ready: the bytes the name holds in all; for an area or a hash table, every segment of its
/// area (it grows), else the segment's size. 0 otherwise.</param>
public sealed record DsmRegistryEntryInfo(string Name, DsmRegistryEntryState State, DsmHandle Handle, long Size, int OwnerPid,
    int InitialisedByPid, int Attempts, int Waiters, DateTimeOffset Changed, DsmRegistryEntryType Type, long TotalSize);
