using System.Runtime.InteropServices;
using Postmaster.Shmem.Locks;

namespace Postmaster.Shmem.Registry;

/// <summary>
/// Header of the "DSM registry" structure in the main segment. ABI: any layout change bumps
/// <see cref="CurrentLayoutVersion"/>. Written once by the postmaster before any child exists; afterwards only
/// <see cref="HighWater"/> and <see cref="Count"/> change (protected by: the DsmRegistry built-in LWLock).
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct DsmRegistryHeader
{
    public const int Size = 64;
    public const uint ExpectedMagic = 0x5247_4D50; // "PMGR" little-endian: unlike zeroed or random memory
    public const uint CurrentLayoutVersion = 2; // 2: entries of three cache lines, with a type and an area size

    [FieldOffset(0)] public uint Magic;
    [FieldOffset(4)] public uint LayoutVersion;
    [FieldOffset(8)] public long TotalSize;      // bytes, header and entries
    [FieldOffset(16)] public int Capacity;       // entries
    [FieldOffset(20)] public int EntrySize;      // = DsmRegistryEntry.Size when written
    [FieldOffset(24)] public int HighWater;      // entries [0, HighWater) have been used at least once; only grows
    [FieldOffset(28)] public int Count;          // entries not Free
}

/// <summary>
/// One name of the registry, three cache lines. Protected by: the DsmRegistry built-in LWLock for every write; readers
/// that take no lock (inspection) use <see cref="Version"/> as a sequence lock. Offsets and handles only: the
/// segment's address differs in every process.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal unsafe struct DsmRegistryEntry
{
    public const int Size = 192;
    public const int NameCapacity = 64;          // bytes, NUL included: names are at most 63 bytes

    [FieldOffset(0)] public fixed byte Name[NameCapacity]; // UTF-8, NUL-padded; meaningful unless Free
    [FieldOffset(64)] public uint NameHash;      // FNV-1a of the name bytes: compared before the name
    [FieldOffset(68)] public DsmRegistryEntryState State;
    [FieldOffset(72)] public int Version;        // odd while a writer is changing the entry (sequence lock for readers)
    [FieldOffset(76)] public int OwnerPid;       // Initialising/Releasing: the process doing it; else 0
    [FieldOffset(80)] public int OwnerSlot;      // its backend slot (a reused slot proves the owner gone); else -1
    [FieldOffset(84)] public uint Handle;        // Ready: the published segment; else 0 (DsmHandle.Invalid)
    [FieldOffset(88)] public long SegmentSize;   // bytes the segment has (Initialising, Ready); else 0
    [FieldOffset(96)] public uint PendingHandle; // Initialising/Releasing: a segment made (or being dropped) but not
                                                 // published; a process taking the entry over unpins it; else 0
    [FieldOffset(100)] public int Claim;         // bumped each time a process takes the entry (a claim token)
    [FieldOffset(104)] public int InitialisedByPid; // Ready: who ran the initialiser; Failed: who failed last
    [FieldOffset(108)] public int Attempts;      // initialisations started for this name since it was last Free
    [FieldOffset(112)] public SharedConditionVariable Changed; // broadcast on every change of State
    [FieldOffset(120)] public long ChangedAtUnixMs; // when State last changed (diagnostics)
    [FieldOffset(128)] public DsmRegistryEntryType Type; // what the segment holds: set when claimed to initialise
    [FieldOffset(136)] public long TotalSize;    // Ready: bytes of everything the entry holds (an area: all its
                                                 // segments, updated as it grows); else 0
}

/// <summary>What a registry name holds (master's pg_dsm_registry_allocations.type).</summary>
internal enum DsmRegistryEntryType
{
    /// <summary>A plain segment (GetNamedDSMSegment).</summary>
    Segment = 0,

    /// <summary>A shared area whose first segment is the entry's (GetNamedDSA).</summary>
    Area = 1,

    /// <summary>A shared hash table in its own area (GetNamedDSHash).</summary>
    HashTable = 2,
}
