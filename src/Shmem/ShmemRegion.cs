using System.Runtime.CompilerServices;

namespace Postmaster.Shmem;

/// <summary>
/// A window on mapped shared memory: a base address valid in this process and a length. Shared structures store
/// offsets from a region's base, never addresses, because every process maps the memory at its own address.
/// Accessors check bounds; the region does not own the mapping (the segment object that created it does).
/// </summary>
internal readonly unsafe struct ShmemRegion
{
    private readonly byte* _base;

    internal ShmemRegion(byte* basePointer, long size)
    {
        _base = basePointer;
        Size = size;
    }

    public long Size { get; }

    public bool IsNull => _base == null;

    /// <summary>The base address in this process (for diagnostics and interop inside src/Shmem only).</summary>
    internal byte* Base => _base;

    /// <summary>A reference to a T stored at <paramref name="offset"/>.</summary>
    public ref T Ref<T>(long offset) where T : unmanaged
    {
        Check(offset, sizeof(T));
        return ref Unsafe.AsRef<T>(_base + offset);
    }

    /// <summary>Bytes [offset, offset+length).</summary>
    public Span<byte> Span(long offset, int length)
    {
        Check(offset, length);
        return new Span<byte>(_base + offset, length);
    }

    /// <summary>A sub-region starting at <paramref name="offset"/>.</summary>
    public ShmemRegion Slice(long offset, long length)
    {
        Check(offset, length);
        return new ShmemRegion(_base + offset, length);
    }

    internal byte* Pointer(long offset)
    {
        Check(offset, 0);
        return _base + offset;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Check(long offset, long length)
    {
        if ((ulong)offset > (ulong)Size || (ulong)length > (ulong)(Size - offset))
            Throw(offset, length);
    }

    private void Throw(long offset, long length) =>
        throw new ArgumentOutOfRangeException(nameof(offset),
            $"shared memory access at offset {offset} length {length} is outside the region of {Size} bytes");
}
