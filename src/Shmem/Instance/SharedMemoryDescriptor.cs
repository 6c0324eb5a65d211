using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Segments;

namespace Postmaster.Shmem.Instance;

/// <summary>
/// Where an instance's shared memory is: the main segment's kind, key, id and size, and the dynamic shared memory
/// implementation. One format and one parse for every place that records or reads it: the lock file (line 7
/// "KEY ID", PostgreSQL's; line 9 "TYPE SIZE DSMTYPE", ours), the backend parameter block, and the CLI. A text that does
/// not parse is rejected (null), never defaulted: a wrong default would make a reader attach the wrong kind.
/// </summary>
internal sealed record SharedMemoryDescriptor(SegmentKind Kind, long Key, long Id, long Size, DsmType DsmType)
{
    public const string SysVName = "sysv";
    public const string PosixName = "posix";
    public const string MmapName = "mmap";

    public static string NameOf(SegmentKind kind) => kind switch
    {
        SegmentKind.SysV => SysVName,
        SegmentKind.Posix => PosixName,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), $"a main segment is sysv or posix, not {kind}"),
    };

    public static string NameOf(DsmType type) => type switch
    {
        DsmType.SysV => SysVName,
        DsmType.Mmap => MmapName,
        _ => PosixName,
    };

    // Try-pattern, not Nullable<T>: Nullable over an enum of this assembly is not precompiled by ReadyToRun, and a
    // backend parses its parameter block with this on its JIT-free start-up path.
    public static bool TryParseKind(string? text, out SegmentKind kind)
    {
        kind = text == SysVName ? SegmentKind.SysV : SegmentKind.Posix;
        return text is SysVName or PosixName;
    }

    public static bool TryParseDsmType(string? text, out DsmType type)
    {
        type = text == SysVName ? DsmType.SysV : text == MmapName ? DsmType.Mmap : DsmType.Posix;
        return text is SysVName or MmapName or PosixName;
    }

    /// <summary><see cref="TryParseKind"/>, or <paramref name="fallback"/> for a missing or unknown name.</summary>
    public static SegmentKind KindOr(string? text, SegmentKind fallback) => TryParseKind(text, out var k) ? k : fallback;

    public static DsmType DsmTypeOr(string? text, DsmType fallback) => TryParseDsmType(text, out var t) ? t : fallback;

    public string KindName => NameOf(Kind);

    public string DsmTypeName => NameOf(DsmType);

    /// <summary>Lock-file line 7.</summary>
    public string KeyLine => $"{Key} {Id}";

    /// <summary>Lock-file line 9.</summary>
    public string InfoLine => $"{KindName} {Size} {DsmTypeName}";

    /// <summary>From the parsed parts of the lock file (or a parameter block); null when anything is missing or not
    /// one of the known names.</summary>
    public static SharedMemoryDescriptor? From(string? kind, long? key, long? id, long? size, string? dsmType) =>
        TryParseKind(kind, out var k) && key is long ky && id is long i && size is long s && TryParseDsmType(dsmType, out var d)
            ? new SharedMemoryDescriptor(k, ky, i, s, d)
            : null;

    /// <summary>From a backend parameter block's fields (all present there); null when a name is unknown.</summary>
    public static SharedMemoryDescriptor? From(string kind, long key, long id, long size, string dsmType) =>
        TryParseKind(kind, out var k) && TryParseDsmType(dsmType, out var d) ? new SharedMemoryDescriptor(k, key, id, size, d) : null;
}
