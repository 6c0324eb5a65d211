using System.Buffers.Text;
using System.Text;
using Postmaster.Shmem.Text;

namespace Postmaster.Shmem.Dsm;

/// <summary>Which kind of object a DSM name or key designates.</summary>
internal enum DsmObjectKind
{
    /// <summary>A user segment (one control-segment item).</summary>
    Segment = 1,

    /// <summary>The control segment itself.</summary>
    Control = 2,
}

/// <summary>
/// Names and keys of one instance's DSM objects (PostgreSQL's "/PostgreSQL.%u", but unique to the instance):
/// <list type="bullet">
/// <item>POSIX: "/pm.TAG.HANDLE" for segments, "/pm.TAG.ctl.HANDLE" for the control segment; in /dev/shm every
/// name of the instance starts with <see cref="PosixFilePrefix"/>.</item>
/// <item>mmap: DATADIR/pm_dynshmem/dsm.HANDLE and DATADIR/pm_dynshmem/control.HANDLE.</item>
/// <item>SysV: a 31-bit key hashed from tag, kind and handle (never 0, which is IPC_PRIVATE). Keys can collide
/// with foreign segments or with each other; creation then retries with another handle.</item>
/// </list>
/// Paths are formatted into a caller's buffer as NUL-terminated UTF-8, so the hot paths allocate nothing; strings
/// are built only for messages.
/// </summary>
internal sealed class DsmNames
{
    public const string DynShmemDirectoryName = "pm_dynshmem";
    public const string MmapSegmentPrefix = "dsm.";
    public const string MmapControlPrefix = "control.";

    /// <summary>Longest decimal handle plus the terminating NUL.</summary>
    private const int HandleDigitsAndNul = 11;

    private readonly byte[] _posixSegment;
    private readonly byte[] _posixControl;
    private readonly byte[] _mmapSegment;
    private readonly byte[] _mmapControl;

    public DsmNames(DsmInstanceTag tag, string dataDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        Tag = tag;
        PosixFilePrefix = "pm." + tag.ToString() + ".";
        DynShmemDirectory = Path.Combine(dataDirectory, DynShmemDirectoryName);
        _posixSegment = Utf8Text.GetBytes("/" + PosixFilePrefix);
        _posixControl = Utf8Text.GetBytes("/" + PosixFilePrefix + "ctl.");
        _mmapSegment = Utf8Text.GetBytes(Path.Combine(DynShmemDirectory, MmapSegmentPrefix));
        _mmapControl = Utf8Text.GetBytes(Path.Combine(DynShmemDirectory, MmapControlPrefix));
    }

    public DsmInstanceTag Tag { get; }

    /// <summary>"pm.TAG.": the start of every file of this instance in /dev/shm.</summary>
    public string PosixFilePrefix { get; }

    /// <summary>DATADIR/pm_dynshmem.</summary>
    public string DynShmemDirectory { get; }

    /// <summary>Bytes a buffer for <see cref="WritePath"/> needs.</summary>
    public int PathBufferSize(DsmImplementation impl, DsmObjectKind kind) => Prefix(impl, kind).Length + HandleDigitsAndNul;

    /// <summary>Writes the NUL-terminated path of (impl, kind, handle) into <paramref name="buffer"/>; returns the
    /// length without the NUL. POSIX and mmap only.</summary>
    public int WritePath(Span<byte> buffer, DsmImplementation impl, DsmObjectKind kind, uint handle)
    {
        var prefix = Prefix(impl, kind);
        prefix.AsSpan().CopyTo(buffer);
        if (!Utf8Formatter.TryFormat(handle, buffer[prefix.Length..], out int digits))
            throw new ArgumentException("the path buffer is too small", nameof(buffer));
        buffer[prefix.Length + digits] = 0;
        return prefix.Length + digits;
    }

    /// <summary>The object's name for messages: the POSIX name, the file path, or the SysV key in decimal.</summary>
    public string Describe(DsmImplementation impl, DsmObjectKind kind, uint handle) => impl == DsmImplementation.SysV
        ? ((uint)SysVKey(kind, handle)).ToString(System.Globalization.CultureInfo.InvariantCulture)
        : Utf8Text.GetString(Prefix(impl, kind)) + handle.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The SysV key of (kind, handle): 1 .. 2^31-1.</summary>
    public int SysVKey(DsmObjectKind kind, uint handle)
    {
        ulong h = DsmInstanceTag.Mix(Tag.Value ^ DsmInstanceTag.Mix(((ulong)kind << 32) | handle));
        int key = (int)(h & 0x7FFF_FFFF);
        return key == 0 ? 1 : key;
    }

    private byte[] Prefix(DsmImplementation impl, DsmObjectKind kind) => (impl, kind) switch
    {
        (DsmImplementation.Posix, DsmObjectKind.Segment) => _posixSegment,
        (DsmImplementation.Posix, DsmObjectKind.Control) => _posixControl,
        (DsmImplementation.Mmap, DsmObjectKind.Segment) => _mmapSegment,
        (DsmImplementation.Mmap, DsmObjectKind.Control) => _mmapControl,
        _ => throw new ArgumentOutOfRangeException(nameof(impl), impl, "only POSIX and mmap objects have path names"),
    };
}
