using System.Runtime.InteropServices;

namespace Postmaster.Shmem.Dsm;

/// <summary>
/// The first <see cref="Size"/> bytes of every OS-backed DSM object (segments and the control segment); the user's
/// bytes follow at offset <see cref="Size"/>. Mapped bases are page aligned, so user addresses are aligned to 64
/// bytes (a cache line, enough for <see cref="Locks.LWLockSegment"/> locks), not to a page. Written once by the
/// creator right after creating the object, never changed. It lets orphan cleanup recognise this instance's objects
/// with certainty (a SysV key alone could be anyone's) and lets <c>postmaster shmem</c> name what it finds.
/// Main-region segments have no header (they are not OS objects). ABI: any change bumps <see cref="CurrentVersion"/>.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct DsmSegmentHeader
{
    public const int Size = 64;
    public const uint ExpectedMagic = 0x5344_4D50; // "PMDS" little-endian
    public const uint CurrentVersion = 1;

    [FieldOffset(0)] public uint Magic;
    [FieldOffset(4)] public uint Version;
    [FieldOffset(8)] public ulong InstanceTag;     // DsmInstanceTag.Value of the creating instance
    [FieldOffset(16)] public uint Handle;          // DsmHandle (segment) or control handle
    [FieldOffset(20)] public DsmObjectKind Kind;   // Segment or Control
    [FieldOffset(24)] public long UserSize;        // bytes after the header
    [FieldOffset(32)] public int CreatorPid;

    public static DsmSegmentHeader For(DsmInstanceTag tag, DsmObjectKind kind, uint handle, long userSize) => new()
    {
        Magic = ExpectedMagic,
        Version = CurrentVersion,
        InstanceTag = tag.Value,
        Handle = handle,
        Kind = kind,
        UserSize = userSize,
        CreatorPid = Os.ProcessControl.CurrentPid,
    };

    /// <summary>True when nothing was ever written here (a new SysV segment is zero-filled by the kernel).</summary>
    public readonly bool IsZero
    {
        get
        {
            var copy = this;
            return !MemoryMarshal.AsBytes(MemoryMarshal.CreateReadOnlySpan(ref copy, 1)).ContainsAnyExcept((byte)0);
        }
    }

    /// <summary>True when this header was written by instance <paramref name="tag"/> for an object of
    /// <paramref name="objectSize"/> bytes.</summary>
    public readonly bool IsOurs(DsmInstanceTag tag, long objectSize) =>
        Magic == ExpectedMagic && Version == CurrentVersion && InstanceTag == tag.Value &&
        Kind is DsmObjectKind.Segment or DsmObjectKind.Control && UserSize == objectSize - Size;
}
