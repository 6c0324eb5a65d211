using Postmaster.Shmem.Dsm;

namespace Postmaster.Shmem.Registry;

/// <summary>One row of the DSM registry listing (<c>postmaster shmem</c>; master's pg_dsm_registry_allocations).</summary>
/// <param name="Name">The registered name.</param>
/// <param name="State">Where the name stands (see <see cref="DsmRegistryEntryState"/>).</param>
/// <param name="Handle">The published segment (Ready); <see cref="DsmHandle.Invalid"/> otherwise.</param>
/// <param name="Size">The segment's size in bytes (Initialising, Ready).</param>
/// <param name="OwnerPid">Initialising or Releasing: the process doing it (it may have died: callers take over).</param>
/// <param name="InitialisedByPid">Ready: the process that ran the initialiser; Failed: the one whose initialiser threw.</param>
/// <param name="Attempts">Initialisations started since the name was registered (1 unless one failed or died).</param>
/// <param name="Waiters">Callers sleeping until the name's state changes (a racy count; one that died stays counted).</param>
/// <param name="Changed">When the state last changed.</param>
/// <param name="Type">What the name holds.</param>
/// <param name="TotalSize">Ready: bytes of everything it holds (an area's or hash table's: all the area's segments).</param>
internal sealed record DsmRegistryEntryInfo(string Name, DsmRegistryEntryState State, DsmHandle Handle, long Size, int OwnerPid,
    int InitialisedByPid, int Attempts, int Waiters, DateTimeOffset Changed, DsmRegistryEntryType Type, long TotalSize);
