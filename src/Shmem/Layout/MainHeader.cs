using System.Runtime.InteropServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.Layout;

/// <summary>
/// Header at offset 0 of the main segment. ABI: any layout change bumps <see cref="CurrentLayoutVersion"/>.
/// Written once by the postmaster before any child exists and read-only afterwards, except
/// <see cref="FreeOffset"/> (protected by: <see cref="AllocLock"/>) and <see cref="DsmControlHandle"/> (written by
/// the postmaster only, after creating the DSM control segment). Offsets only: no field holds an address.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct MainHeader
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

    /// <summary>Name used in validation results.</summary>
    public const string StructureName = "main shared memory header";

    /// <summary>
    /// Checks the header at offset 0 of <paramref name="segment"/> before anything in it is trusted: room for it,
    /// magic, layout version, header size, total size equal to the mapping, the index offset inside the segment
    /// (and cache-line aligned), the free offset between the index and the end, a plausible creator pid and
    /// generation, and the data directory's identity (<paramref name="dataDir"/>'s device and inode). Reads only the
    /// header's 128 bytes; never throws. Null when valid, else the first problem, e.g.
    /// <c>main shared memory header: wrong magic number 0x00000000 (expected 0x504D5348)</c>.
    /// </summary>
    public static string? Validate(ShmemRegion segment, FileStat dataDir) => Validate(segment, checkDataDir: true, dataDir);

    /// <summary><see cref="Validate(ShmemRegion, FileStat)"/> without the data directory check.</summary>
    public static string? Validate(ShmemRegion segment) => Validate(segment, checkDataDir: false, default);

    /// <summary>Not a nullable FileStat: Nullable&lt;T&gt; over a struct of this assembly is not precompiled by
    /// ReadyToRun, and this runs in every backend's start-up.</summary>
    private static string? Validate(ShmemRegion segment, bool checkDataDir, in FileStat d)
    {
        if (segment.IsNull)
            return $"{StructureName}: the segment is not mapped";
        if (segment.Size < Size)
            return ShmemProblem.TooSmall(StructureName, segment.Size, Size);
        var h = segment.Ref<MainHeader>(0); // a copy: checks see one consistent value of each field
        if (ShmemProblem.Header(StructureName, segment.Size, Size, h.Magic, ExpectedMagic, h.LayoutVersion, CurrentLayoutVersion)
            is { } problem)
            return problem;
        if (h.HeaderSize != Size)
            return $"{StructureName}: header size {h.HeaderSize} (expected {Size})";
        if (h.TotalSize != segment.Size)
            return $"{StructureName}: total size {h.TotalSize} does not match the mapped segment of {segment.Size} bytes";
        if (h.IndexOffset < Size || h.IndexOffset > segment.Size - MinIndexHeaderSize || h.IndexOffset % ShmemSize.CacheLineSize != 0)
            return $"{StructureName}: index offset {h.IndexOffset} is outside the segment of {segment.Size} bytes or not aligned";
        if (h.FreeOffset < h.IndexOffset + MinIndexHeaderSize || h.FreeOffset > h.TotalSize)
            return $"{StructureName}: free offset {h.FreeOffset} is outside {h.IndexOffset + MinIndexHeaderSize}..{h.TotalSize}";
        if (h.CreatorPid <= 0)
            return $"{StructureName}: creator pid {h.CreatorPid} is not a process id";
        if (h.Generation < 1)
            return $"{StructureName}: generation {h.Generation} is not positive";
        if (checkDataDir && (h.DataDirDevice != d.Device || h.DataDirInode != d.Inode))
            return $"{StructureName}: the segment belongs to another data directory (segment: device {h.DataDirDevice} " +
                   $"inode {h.DataDirInode}; data directory: device {d.Device} inode {d.Inode})";
        return null;
    }

    /// <summary>The index's own header (<see cref="ShmemIndex"/>): the least that must fit after the index offset.</summary>
    private const int MinIndexHeaderSize = 64;
}
