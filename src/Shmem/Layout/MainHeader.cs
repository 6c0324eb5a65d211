using System.Runtime.InteropServices;

namespace Postmaster.Shmem.Layout;

/// <summary>
/// Header at offset 0 of the main segment. ABI: any layout change bumps <see cref="CurrentLayoutVersion"/>.
/// Written once by the postmaster before any child exists and read-only afterwards, except
/// <see cref="FreeOffset"/> (protected by: <see cref="AllocLock"/>) and <see cref="DsmControlHandle"/> (written by
/// the postmaster only, after creating the DSM control segment). Offsets only: no field holds an address.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
public struct MainHeader
{
    public const int Size = 128;
    public const uint ExpectedMagic = 0x504D_5348;   // "PMSH": unlike zeroed or random memory
    public const uint CurrentLayoutVersion = 1;

    [FieldOffset(0)] public uint Magic;
    [FieldOffset(4)] public uint LayoutVersion;
    [FieldOffset(8)] public int CreatorPid;
    [FieldOffset(12)] public int HeaderSize;           // = Size; lets a reader check it reads what was written
    [FieldOffset(16)] public long TotalSize;           // bytes, including this header
    [FieldOffset(24)] public long FreeOffset;          // bump pointer for named allocations; only grows
    [FieldOffset(32)] public ulong DataDirDevice;      // st_dev of the data directory (identity check)
    [FieldOffset(40)] public ulong DataDirInode;       // st_ino of the data directory
    [FieldOffset(48)] public uint DsmControlHandle;    // 0 = none yet
    [FieldOffset(52)] public int AllocLock;            // spin word guarding FreeOffset and the index: 0 free, else holder pid
    [FieldOffset(56)] public long IndexOffset;         // offset of the ShmemIndex
    [FieldOffset(64)] public long CreatedAtUnixMs;     // creation time (diagnostics)
    [FieldOffset(72)] public long Generation;          // 1 at first creation, +1 on each crash reinitialisation
    [FieldOffset(80)] public int LogMinMessages;       // 1 + the current log_min_messages (postmaster's Severity order);
                                                       // 0 = not published. Rewritten on reload; backends read it
}
