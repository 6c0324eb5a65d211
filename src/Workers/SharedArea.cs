using Postmaster.Shmem.Errors;
using Engine = Postmaster.Shmem.Area;

namespace Postmaster.Workers;

/// <summary>
/// A shared area (PostgreSQL's dsa.c): allocate and free blocks of any size from any process of the instance, in
/// dynamic shared memory that grows by adding segments on demand. A block is known by its <see cref="AreaPointer"/>,
/// which means the same in every process; this process maps a segment the first time it touches a pointer into it.
/// Get one with <see cref="DynamicSharedMemory.CreateArea"/>, <see cref="DynamicSharedMemory.AttachArea"/> (by
/// <see cref="Handle"/>) or by name with <see cref="DsmRegistry.GetNamedArea"/>; there is one object per area in a
/// process.
/// <para><b>Lifetime.</b> The area lives until <see cref="Destroy"/> (any process), shutdown or a crash restart, whether
/// or not a process has it attached; this process's mappings last until <see cref="Detach"/> or exit.</para>
/// <para><b>Crash semantics.</b> <see cref="Allocate"/> and <see cref="Free"/> run under the area's lock: a process
/// killed inside one makes the postmaster restart the instance; killed anywhere else, it is reconciled alone and the
/// area stays consistent (what it allocated and did not free stays allocated).</para>
/// <para><b>Threads.</b> Safe from any thread. Errors: <see cref="ShmemException"/> <c>out of memory</c> when the area
/// cannot grow (its size limit, 1024 segments, or the operating system's shared memory), <see cref="ArgumentException"/>
/// for a pointer that is not an allocated block of this area, <see cref="ObjectDisposedException"/> after
/// <see cref="Detach"/>.</para>
/// </summary>
public sealed class SharedArea
{
    /// <summary>The largest block one request can get: 1 GiB.</summary>
    public const long MaxAllocationSize = Engine.SharedArea.MaxAllocationSize;

    /// <summary>The default size of an area's first segment: 1 MiB (later segments double every two).</summary>
    public const long DefaultInitialSegmentSize = Engine.SharedArea.DefaultInitialSegmentSize;

    private readonly Engine.SharedArea _area;

    private SharedArea(Engine.SharedArea area) => _area = area;

    internal static SharedArea For(Engine.SharedArea area)
    {
        if (Volatile.Read(ref area.Facade) is SharedArea known)
            return known;
        var made = new SharedArea(area);
        return (SharedArea)(Interlocked.CompareExchange(ref area.Facade, made, null) ?? made);
    }

    internal Engine.SharedArea Inner => _area;

    /// <summary>The area's handle (its first segment's): give it to another process to attach the area.</summary>
    public DsmHandle Handle => new(_area.Handle);

    /// <summary>Bytes of all the area's segments.</summary>
    public long TotalSize => _area.TotalSize;

    /// <summary>Segments the area has.</summary>
    public int SegmentCount => _area.SegmentCount;

    /// <summary>Bytes handed out and not freed, rounded up to size classes (up to 8 kB) or 4 kB pages.</summary>
    public long AllocatedBytes => _area.AllocatedBytes;

    /// <summary>Blocks handed out and not freed.</summary>
    public long Allocations => _area.Allocations;

    /// <summary>The most bytes of segments the area may have.</summary>
    public long SizeLimit => _area.SizeLimit;

    /// <summary>True once any process destroyed the area.</summary>
    public bool IsDestroyed => _area.IsDestroyed;

    /// <summary>A block of at least <paramref name="size"/> bytes (PostgreSQL's dsa_allocate); its contents are
    /// undefined unless <paramref name="zero"/>. Throws <see cref="ShmemException"/> <c>out of memory</c> when the area
    /// cannot grow.</summary>
    /// <param name="size">1 to <see cref="MaxAllocationSize"/> bytes.</param>
    /// <param name="zero">Clear the block.</param>
    public AreaPointer Allocate(long size, bool zero = false) => new(_area.Allocate(size, zero).Value);

    /// <summary><see cref="Allocate"/> that returns false instead of throwing when the area cannot grow
    /// (PostgreSQL's DSA_ALLOC_NO_OOM).</summary>
    /// <param name="size">1 to <see cref="MaxAllocationSize"/> bytes.</param>
    /// <param name="pointer">The block; null when false is returned.</param>
    /// <param name="zero">Clear the block.</param>
    public bool TryAllocate(long size, out AreaPointer pointer, bool zero = false)
    {
        pointer = new(_area.Allocate(size, zero, nullIfFull: true).Value);
        return !pointer.IsNull;
    }

    /// <summary>Gives the block at <paramref name="pointer"/> back (PostgreSQL's dsa_free). Throws
    /// <see cref="ArgumentException"/> when no allocated block of this area starts there; a block freed twice is not
    /// always caught (as in PostgreSQL): do not.</summary>
    /// <param name="pointer">From <see cref="Allocate"/>.</param>
    public void Free(AreaPointer pointer) => _area.Free(new Engine.AreaPointer(pointer.Value));

    /// <summary>This process's view of the whole block at <paramref name="pointer"/> (its size rounded up to its size
    /// class or to pages), bounds-checked. Throws <see cref="ArgumentException"/> when no allocated block starts there.</summary>
    /// <param name="pointer">From <see cref="Allocate"/>.</param>
    public ShmemRegion Region(AreaPointer pointer) => new(_area.Block(new Engine.AreaPointer(pointer.Value)));

    /// <summary>Destroys the area for every process (PostgreSQL's dsa_unpin of its last pin): every later operation
    /// fails, and each segment's memory is returned once no process has it mapped. Detaches this process. An area the
    /// registry holds by name is destroyed by <see cref="DsmRegistry.Release"/> instead
    /// (<see cref="InvalidOperationException"/> here).</summary>
    public void Destroy() => _area.Destroy();

    /// <summary>Unmaps the area's segments in this process (PostgreSQL's dsa_detach); the area lives on. No other
    /// thread of the process may be using the area then. This object, and the tables in the area, refuse later use
    /// (<see cref="ObjectDisposedException"/>).</summary>
    public void Detach() => _area.Detach();

    /// <summary>"shared area HANDLE (N segments, B bytes)".</summary>
    public override string ToString() => _area.ToString();
}
