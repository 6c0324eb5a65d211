using Postmaster.Shmem.Errors;
using Engine = Postmaster.Shmem.Dsm;

namespace Postmaster.Workers;

/// <summary>
/// Dynamic shared memory for this backend (<see cref="WorkerContext.Dsm"/>; PostgreSQL's dsm.c): segments created and
/// destroyed at run time, reference-counted per process. A segment lives while a process has it attached or it is
/// pinned; the last detach destroys it. The postmaster gives back exactly what a backend held when it dies, so a dying
/// worker leaks nothing. Safe to use from any thread of the worker.
/// <para>Errors (PostgreSQL's messages) are <see cref="ShmemException"/>: <c>too many dynamic shared memory
/// segments</c>, <c>can't attach the same segment more than once</c>, <c>cannot pin a segment that is already
/// pinned</c>, <c>cannot unpin unknown segment handle</c>, <c>cannot unpin a segment that is not pinned</c>; an
/// operating-system failure is an <see cref="OsCallException"/> naming the object.</para>
/// </summary>
public sealed class DynamicSharedMemory
{
    private readonly Engine.DsmSession _session;

    internal DynamicSharedMemory(Engine.DsmSession session) => _session = session;

    /// <summary>The engine's session behind this facade.</summary>
    internal Engine.DsmSession Inner => _session;

    /// <summary>Segments this process has attached now.</summary>
    public int AttachedCount => _session.AttachedCount;

    /// <summary>Creates a segment of <paramref name="size"/> bytes and attaches it (PostgreSQL's dsm_create). It is
    /// carved from the preallocated region (<c>min_dynamic_shared_memory</c>) when that has room, else made with
    /// <c>dynamic_shared_memory_type</c>.</summary>
    /// <param name="size">Bytes, more than 0.</param>
    /// <param name="flags">Options (<see cref="DsmCreateFlags"/>).</param>
    /// <returns>The segment; null only with <see cref="DsmCreateFlags.NullIfMaxSegments"/> when there is no room for
    /// another.</returns>
    public DsmSegment? Create(long size, DsmCreateFlags flags = DsmCreateFlags.None) =>
        _session.Create(size, (Engine.DsmCreateFlags)flags) is { } segment ? DsmSegment.For(segment) : null;

    /// <summary>Attaches the segment <paramref name="handle"/> names (PostgreSQL's dsm_attach). Attaching a segment this
    /// process has already is an error: look with <see cref="FindMapping"/> first.</summary>
    /// <param name="handle">From the process that created or attached the segment.</param>
    /// <returns>The segment; null when it is gone (everyone detached, or the handle is of a segment destroyed since).</returns>
    public DsmSegment? Attach(DsmHandle handle) =>
        _session.Attach(handle.Inner) is { } segment ? DsmSegment.For(segment) : null;

    /// <summary>Detaches <paramref name="segment"/> (PostgreSQL's dsm_detach), pinned mapping or not: runs its on-detach
    /// callbacks newest first, unmaps it, then drops this process's reference (the last one destroys the segment).
    /// Idempotent.</summary>
    /// <param name="segment">A segment of this process.</param>
    public void Detach(DsmSegment segment)
    {
        ArgumentNullException.ThrowIfNull(segment);
        _session.Detach(segment.Inner);
    }

    /// <summary>This process's mapping of <paramref name="handle"/> (PostgreSQL's dsm_find_mapping).</summary>
    /// <param name="handle">A segment's handle.</param>
    /// <returns>The segment, or null when this process does not have it attached.</returns>
    public DsmSegment? FindMapping(DsmHandle handle) =>
        _session.FindMapping(handle.Inner) is { } segment ? DsmSegment.For(segment) : null;

    /// <summary>Keeps <paramref name="segment"/> alive with no process attached, until <see cref="Unpin"/>, shutdown or
    /// a crash restart (PostgreSQL's dsm_pin_segment). The pin belongs to the segment, not to this process: it survives
    /// this process's exit.</summary>
    /// <param name="segment">A segment this process has attached.</param>
    public void Pin(DsmSegment segment)
    {
        ArgumentNullException.ThrowIfNull(segment);
        _session.Pin(segment.Inner);
    }

    /// <summary>Removes the pin of the segment <paramref name="handle"/> names; this process need not have it attached
    /// (PostgreSQL's dsm_unpin_segment). If that was the last reference, the segment is destroyed.</summary>
    /// <param name="handle">A pinned segment's handle.</param>
    public void Unpin(DsmHandle handle) => _session.Unpin(handle.Inner);

    /// <summary>Keeps this process's mapping past <see cref="DsmSegment.Dispose"/>, until <see cref="Detach"/> or exit
    /// (PostgreSQL's dsm_pin_mapping).</summary>
    /// <param name="segment">A segment this process has attached.</param>
    public void PinMapping(DsmSegment segment)
    {
        ArgumentNullException.ThrowIfNull(segment);
        _session.PinMapping(segment.Inner);
    }

    /// <summary>Undoes <see cref="PinMapping"/>: <see cref="DsmSegment.Dispose"/> detaches again.</summary>
    /// <param name="segment">A segment this process has attached.</param>
    public void UnpinMapping(DsmSegment segment)
    {
        ArgumentNullException.ThrowIfNull(segment);
        _session.UnpinMapping(segment.Inner);
    }

    /// <summary>Creates a shared area (PostgreSQL's dsa_create + dsa_pin): an allocator over segments created on
    /// demand. It lives until <see cref="SharedArea.Destroy"/>, shutdown or a crash restart; give
    /// <see cref="SharedArea.Handle"/> to other processes to attach it.</summary>
    /// <param name="initialSegmentSize">Bytes of the first segment (256 kB to <paramref name="maxSegmentSize"/>; later
    /// segments double every two).</param>
    /// <param name="sizeLimit">The most bytes of segments the area may have (PostgreSQL's dsa_set_size_limit).</param>
    /// <param name="maxSegmentSize">The largest segment made for ordinary growth (a bigger block gets one of its own size).</param>
    public SharedArea CreateArea(long initialSegmentSize = SharedArea.DefaultInitialSegmentSize, long sizeLimit = long.MaxValue,
        long maxSegmentSize = Postmaster.Shmem.Area.SharedArea.DefaultMaxSegmentSize) =>
        SharedArea.For(Postmaster.Shmem.Area.SharedArea.Create(_session, _session.Owner, _session.Instance.Tranches,
            initialSegmentSize, sizeLimit, maxSegmentSize));

    /// <summary>Attaches the area <paramref name="handle"/> names (PostgreSQL's dsa_attach); the same object when this
    /// process has it already. Throws <see cref="ShmemException"/> when it is gone or damaged.</summary>
    /// <param name="handle">A <see cref="SharedArea.Handle"/>.</param>
    public SharedArea AttachArea(DsmHandle handle) =>
        SharedArea.For(Postmaster.Shmem.Area.SharedArea.Attach(_session, _session.Owner, handle.Inner));
}
