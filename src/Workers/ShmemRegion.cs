using System.Runtime.CompilerServices;
using Engine = Postmaster.Shmem;

namespace Postmaster.Workers;

/// <summary>
/// A window on shared memory mapped in this process: named main-segment space (<see cref="WorkerContext.InitStruct"/>)
/// or a dynamic shared memory segment's bytes (<see cref="DsmSegment.Region"/>). Every access is bounds-checked
/// (<see cref="ArgumentOutOfRangeException"/> outside it). Other processes map the same memory at other addresses,
/// so store offsets from the region's start in it, never addresses or managed references. The region does not own
/// the mapping: it is valid as long as what it came from stays attached. The default value is empty
/// (<see cref="IsNull"/>).
/// </summary>
public readonly struct ShmemRegion
{
    internal readonly Engine.ShmemRegion Inner;

    internal ShmemRegion(in Engine.ShmemRegion value) => Inner = value;

    /// <summary>The region's length in bytes.</summary>
    public long Size => Inner.Size;

    /// <summary>True for the default (empty) region.</summary>
    public bool IsNull => Inner.IsNull;

    /// <summary>A reference to the <typeparamref name="T"/> stored at <paramref name="offset"/>: read and write it in
    /// place (<c>region.Ref&lt;long&gt;(0)++</c>, or through <see cref="Volatile"/> and <see cref="Interlocked"/>
    /// for fields shared without a lock).</summary>
    /// <typeparam name="T">An unmanaged type: no references, no <c>bool</c> or <c>string</c> fields if another
    /// process's code reads it (use explicit layouts, integers and byte flags).</typeparam>
    /// <param name="offset">Byte offset from the region's start; the whole value must lie inside the region.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref T Ref<T>(long offset) where T : unmanaged => ref Inner.Ref<T>(offset);

    /// <summary>Bytes [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="length"/>).</summary>
    /// <param name="offset">Byte offset from the region's start.</param>
    /// <param name="length">Number of bytes.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> Span(long offset, int length) => Inner.Span(offset, length);

    /// <summary>The sub-region [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="length"/>).</summary>
    /// <param name="offset">Byte offset from the region's start.</param>
    /// <param name="length">Length of the sub-region in bytes.</param>
    public ShmemRegion Slice(long offset, long length) => new(Inner.Slice(offset, length));

    /// <summary>"shared memory region of N bytes".</summary>
    public override string ToString() => $"shared memory region of {Size} bytes";
}
