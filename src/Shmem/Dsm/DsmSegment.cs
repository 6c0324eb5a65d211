namespace Postmaster.Shmem.Dsm;

/// <summary>
/// One dynamic shared memory segment as this process has it attached (PostgreSQL's dsm_segment): the handle to pass
/// to other processes, the user's bytes (<see cref="Region"/>) and the on-detach callbacks. Obtained from
/// <see cref="DsmSession.Create"/> or <see cref="DsmSession.Attach"/>; valid until detached.
/// <para><b>Scope.</b> <see cref="Dispose"/> detaches, like PostgreSQL's resource owner releasing a query's segments,
/// unless the mapping is pinned (<see cref="DsmSession.PinMapping"/>), in which case it stays until
/// <see cref="DsmSession.Detach"/> or <see cref="DsmSession.DetachAll"/> (the exit path). Detaching is idempotent.</para>
/// <para><b>Addresses.</b> <see cref="Address"/> differs between processes; store offsets from it in the segment, never
/// addresses. It is aligned to at least 64 bytes (OS-backed segments: 64 bytes after a page boundary, behind the
/// <see cref="DsmSegmentHeader"/>; main-region segments: page aligned).</para>
/// </summary>
internal sealed unsafe class DsmSegment : IDisposable
{
    private readonly DsmSession _session;
    private List<Action<DsmSegment>>? _onDetach; // created on first use; also the lock of its own contents
    private int _state; // 0 attached, 1 detaching or detached
    private int _mappingPinned;

    /// <summary>The worker SDK's object for this segment (a <c>Postmaster.Workers.DsmSegment</c>), made on first use
    /// and kept here so that every path to this attachment gives the worker the same object. The engine never reads
    /// it. Written once with a compare-exchange.</summary>
    internal object? Facade;

    /// <summary>The <see cref="Area.SharedArea"/> whose first segment this is, once this process attached it as an area
    /// (one area object per process). Written once with a compare-exchange.</summary>
    internal object? Area;

    internal DsmSegment(DsmSession session, DsmHandle handle, int index, DsmImplementation implementation,
        DsmMapping mapping, ShmemRegion region)
    {
        _session = session;
        Handle = handle;
        Index = index;
        Implementation = implementation;
        Mapping = mapping;
        Region = region;
    }

    public DsmHandle Handle { get; }

    /// <summary>Where the memory comes from: main region, or the OS implementation.</summary>
    public DsmImplementation Implementation { get; }

    /// <summary>The user's bytes (the size asked for at creation).</summary>
    public ShmemRegion Region { get; }

    public long Size => Region.Size;

    /// <summary>Base address of <see cref="Region"/> in this process.</summary>
    public nint Address => (nint)Region.Base;

    /// <summary>True until detached.</summary>
    public bool IsAttached => Volatile.Read(ref _state) == 0;

    /// <summary>True when <see cref="Dispose"/> leaves the mapping in place (see <see cref="DsmSession.PinMapping"/>).</summary>
    public bool IsMappingPinned => Volatile.Read(ref _mappingPinned) != 0;

    /// <summary>The control item (index part of the handle).</summary>
    internal int Index { get; }

    /// <summary>The whole OS mapping (header included); default for main-region segments.</summary>
    internal DsmMapping Mapping { get; }

    /// <summary>Registers <paramref name="callback"/> to run when this process detaches the segment; callbacks run
    /// last-registered first (PostgreSQL's on_dsm_detach).</summary>
    public void OnDetach(Action<DsmSegment> callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var list = Callbacks();
        lock (list)
        {
            if (Volatile.Read(ref _state) != 0)
                throw new InvalidOperationException($"dynamic shared memory segment {Handle} is already detached");
            list.Add(callback);
        }
    }

    /// <summary>Removes the most recently registered occurrence of <paramref name="callback"/>; false when it is not
    /// registered (PostgreSQL's cancel_on_dsm_detach).</summary>
    public bool CancelOnDetach(Action<DsmSegment> callback)
    {
        var list = Volatile.Read(ref _onDetach);
        if (list is null)
            return false;
        lock (list)
        {
            int i = list.LastIndexOf(callback);
            if (i < 0)
                return false;
            list.RemoveAt(i);
            return true;
        }
    }

    /// <summary>Detaches unless the mapping is pinned (see the class summary).</summary>
    public void Dispose()
    {
        if (!IsMappingPinned)
            _session.Detach(this);
    }

    public override string ToString() => $"dynamic shared memory segment {Handle} ({Size} bytes, {Implementation})";

    internal bool BelongsTo(DsmSession session) => ReferenceEquals(_session, session);

    internal void SetMappingPinned(bool pinned) => Volatile.Write(ref _mappingPinned, pinned ? 1 : 0);

    /// <summary>Marks the segment detaching; false when someone already did (detach is idempotent).</summary>
    internal bool BeginDetach() => Interlocked.Exchange(ref _state, 1) == 0;

    /// <summary>Pops the newest callback (removed before it runs, so a failing one is not run again); null when none
    /// is left.</summary>
    internal Action<DsmSegment>? PopCallback()
    {
        var list = Volatile.Read(ref _onDetach);
        if (list is null)
            return null;
        lock (list)
        {
            if (list.Count == 0)
                return null;
            var cb = list[^1];
            list.RemoveAt(list.Count - 1);
            return cb;
        }
    }

    private List<Action<DsmSegment>> Callbacks() =>
        Volatile.Read(ref _onDetach) ?? Interlocked.CompareExchange(ref _onDetach, new(), null) ?? _onDetach!;
}
