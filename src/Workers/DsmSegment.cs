using Engine = Postmaster.Shmem.Dsm;

namespace Postmaster.Workers;

/// <summary>
/// One dynamic shared memory segment as this process has it attached (PostgreSQL's dsm_segment): the handle to give
/// other processes, the bytes (<see cref="Region"/>) and the on-detach callbacks. From
/// <see cref="DynamicSharedMemory.Create"/>, <see cref="DynamicSharedMemory.Attach"/> or the registry; there is one
/// object per attached segment (<see cref="DynamicSharedMemory.FindMapping"/> returns the same one), valid until
/// detached.
/// <para><b>Scope.</b> <see cref="Dispose"/> detaches (<c>using var seg = context.Dsm.Create(size)!;</c>), unless the
/// mapping is pinned (<see cref="DynamicSharedMemory.PinMapping"/>); whatever is still attached is detached by the
/// exit path. The segment itself lives while any process has it attached or it is pinned
/// (<see cref="DynamicSharedMemory.Pin"/>); the last detach destroys it.</para>
/// </summary>
public sealed class DsmSegment : IDisposable
{
    private readonly Engine.DsmSegment _segment;
    private readonly object _gate = new();
    private List<(Action<DsmSegment> Callback, Action<Engine.DsmSegment> Registered)>? _callbacks;

    private DsmSegment(Engine.DsmSegment segment) => _segment = segment;

    /// <summary>The facade of <paramref name="segment"/>: made on first use and kept on the engine's object, so that
    /// every path to one attached segment gives the same object.</summary>
    internal static DsmSegment For(Engine.DsmSegment segment)
    {
        if (Volatile.Read(ref segment.Facade) is DsmSegment known)
            return known;
        var made = new DsmSegment(segment);
        return (DsmSegment)(Interlocked.CompareExchange(ref segment.Facade, made, null) ?? made);
    }

    /// <summary>The engine's segment behind this facade.</summary>
    internal Engine.DsmSegment Inner => _segment;

    /// <summary>The segment's instance-wide handle: give it to other processes to attach the segment.</summary>
    public DsmHandle Handle => new(_segment.Handle);

    /// <summary>The segment's size in bytes, as asked for at creation.</summary>
    public long Size => _segment.Size;

    /// <summary>The segment's bytes in this process. Store offsets in it, never addresses.</summary>
    public ShmemRegion Region => new(_segment.Region);

    /// <summary>True until this process detaches the segment.</summary>
    public bool IsAttached => _segment.IsAttached;

    /// <summary>True when <see cref="Dispose"/> leaves the mapping in place (<see cref="DynamicSharedMemory.PinMapping"/>).</summary>
    public bool IsMappingPinned => _segment.IsMappingPinned;

    /// <summary>Registers <paramref name="callback"/> to run when this process detaches the segment, before it is
    /// unmapped; callbacks run last-registered first (PostgreSQL's on_dsm_detach). A callback that throws does not stop
    /// the detach; its exception is rethrown once the segment is detached. Throws
    /// <see cref="InvalidOperationException"/> when the segment is already detached.</summary>
    /// <param name="callback">Called with this segment.</param>
    public void OnDetach(Action<DsmSegment> callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        Action<Engine.DsmSegment> registered = _ => callback(this);
        lock (_gate)
        {
            _segment.OnDetach(registered);
            (_callbacks ??= new()).Add((callback, registered));
        }
    }

    /// <summary>Removes the most recently registered occurrence of <paramref name="callback"/> (PostgreSQL's
    /// cancel_on_dsm_detach).</summary>
    /// <param name="callback">A callback given to <see cref="OnDetach"/>.</param>
    /// <returns>False when it is not registered (any more).</returns>
    public bool CancelOnDetach(Action<DsmSegment> callback)
    {
        lock (_gate)
        {
            if (_callbacks is null)
                return false;
            for (int i = _callbacks.Count - 1; i >= 0; i--)
            {
                if (!_callbacks[i].Callback.Equals(callback))
                    continue;
                var registered = _callbacks[i].Registered;
                _callbacks.RemoveAt(i);
                return _segment.CancelOnDetach(registered); // false: it has run already
            }
            return false;
        }
    }

    /// <summary>Detaches the segment, unless its mapping is pinned. Idempotent.</summary>
    public void Dispose() => _segment.Dispose();

    /// <summary>"dynamic shared memory segment HANDLE (SIZE bytes, IMPLEMENTATION)".</summary>
    public override string ToString() => _segment.ToString();
}
