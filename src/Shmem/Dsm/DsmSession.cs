using System.Runtime.ExceptionServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Layout;
using Postmaster.Shmem.Locks;

namespace Postmaster.Shmem.Dsm;

/// <summary>
/// Dynamic shared memory for one process attached to the instance (a backend, a tool, a test): create, attach,
/// detach, pin and unpin segments that are reference-counted in the control segment (PostgreSQL's dsm.c, backend
/// side). Never used by the supervisor, which has <see cref="DsmControl"/>.
/// <para><b>Lifecycle.</b> Construct it once per process with the attached instance, this process's
/// <see cref="LockOwner"/> (its slot is also the attachment-record slot) and the instance's <see cref="DsmConfig"/>;
/// the constructor attaches and validates the control segment. On the exit path call <see cref="DetachAll"/>
/// (ExitCallbacks runs it between the before-shmem and on-shmem callbacks), then <see cref="Dispose"/>.</para>
/// <para><b>Overview.</b> Every change to the shared table (reference counts, item states, this slot's attachment
/// record) happens under the built-in DsmControl LWLock, held only for a few memory operations: system calls
/// (shm_open, posix_fallocate, mmap, unlink ...) always run outside it. Creation reserves the item first, in state
/// Creating with this process as owner, then makes the OS object, then publishes the item Live, so a death at any
/// point leaves an item the supervisor can finish. Detach unmaps before it drops the reference, so whoever sees
/// the count reach 1 knows no mapping remains; the one who drops it there marks the item Destroying, removes the OS
/// object outside the lock and then frees the item (a death in between leaves a moribund item whose owner is dead,
/// which the supervisor finishes). Because the attachment record changes in the same critical section as the
/// reference count, the supervisor can give back exactly the references of a process that died (see
/// <see cref="DsmControl.ReconcileSlot"/>).</para>
/// <para><b>Threads.</b> Safe to call from several threads: a process-local gate serialises the short critical
/// sections, because the <see cref="LockOwner"/> has a single writer; system calls run outside the gate. The caller
/// must not use the same LockOwner on another thread at the same time (LockOwner's own rule).</para>
/// <para><b>Errors</b> (PostgreSQL's messages): <c>too many dynamic shared memory segments</c> (the table is full;
/// see <see cref="DsmCreateFlags.NullIfMaxSegments"/>), <c>can't attach the same segment more than once</c>,
/// <c>cannot pin a segment that is already pinned</c>, <c>cannot unpin unknown segment handle</c>,
/// <c>cannot unpin a segment that is not pinned</c>, and OS failures as <see cref="OsCallException"/> naming the object.</para>
/// </summary>
internal sealed unsafe partial class DsmSession : IDisposable
{
    /// <summary>Handles tried (generation after generation) when OS names or SysV keys are taken.</summary>
    public const int MaxCollisionRetries = 16;

    private readonly object _gate = new();
    private readonly Dictionary<uint, DsmSegment?> _byHandle = new(); // null: an attach in progress
    private readonly List<DsmSegment> _order = new();                 // attach order; DetachAll goes newest first
    private readonly DsmNames _names;
    private readonly DsmImplementation _implementation;
    private readonly LockOwner _owner;
    private readonly LWLockHandle _lock;
    private readonly DsmPageAllocator? _mainRegion;
    private readonly DsmControlTable _table;
    private readonly DsmMapping _control;
    private readonly IShmemLogger _log;
    private readonly int _slot;
    private readonly int _pid;
    private bool _disposed;

    /// <summary>Attaches the instance's control segment (handle in the main header) and validates it. Throws
    /// <see cref="ShmemException"/> when there is none and <see cref="ShmemCorruptException"/> when it is not valid
    /// (PostgreSQL's FATAL "dynamic shared memory control segment is not valid"), or when this slot's attachment
    /// record still lists segments of a process that was not reconciled.</summary>
    public DsmSession(InstanceShmem instance, LockOwner owner, DsmConfig config, IShmemLogger? log = null)
    {
        ArgumentNullException.ThrowIfNull(instance);
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentNullException.ThrowIfNull(config);
        Instance = instance;
        _names = config.Names;
        _implementation = (DsmImplementation)config.Type;
        _owner = owner;
        _slot = owner.Slot;
        _pid = owner.Pid;
        _log = log ?? NullShmemLogger.Instance;
        _lock = instance.Tranches.Builtin(BuiltinLWLock.DsmControl);
        _mainRegion = instance.DsmMainRegion;
        uint controlHandle = instance.Main.Header.DsmControlHandle;
        _control = DsmControl.AttachControlObject(config, controlHandle);
        try
        {
            _table = DsmControlTable.Attach(_control.Address + DsmSegmentHeader.Size, _control.Size - DsmSegmentHeader.Size, config.Tag);
            if ((uint)_slot >= (uint)_table.SlotCount)
                throw new ArgumentOutOfRangeException(nameof(owner), _slot,
                    $"slot {_slot} has no dynamic shared memory attachment record (there are {_table.SlotCount})");
            lock (_gate)
            {
                LockControl();
                try
                {
                    ref var record = ref _table.Record(_slot);
                    // Pins of an earlier process of this slot stay (they belong to their segments); attachments of
                    // one that was not reconciled mean the reference counts are off: refuse the slot.
                    int attached = record.Pid == _pid ? 0 : _table.ForgetPins(_slot);
                    if (attached != 0)
                        throw new ShmemException(
                            $"dynamic shared memory attachment record of slot {_slot} still lists {attached} segments of process {record.Pid}",
                            hint: "The supervisor must reconcile a dead process's slot (DsmControl.ReconcileSlot) before the slot is reused.");
                    record.Pid = _pid;
                }
                finally
                {
                    UnlockControl();
                }
            }
        }
        catch
        {
            DsmOs.Detach(_implementation, _control);
            throw;
        }
    }

    /// <summary>The instance this session is attached to.</summary>
    internal InstanceShmem Instance { get; }

    /// <summary>The backend slot this session records its attachments in.</summary>
    public int Slot => _slot;

    /// <summary>Segments attached in this process now.</summary>
    public int AttachedCount
    {
        get
        {
            lock (_gate)
                return _order.Count;
        }
    }

    /// <summary>The process-local gate that serialises this session's use of its <see cref="LockOwner"/>. Modules built
    /// on the session with the same owner (the DSM registry) take it around their own short critical sections, so
    /// that the owner still has one user at a time. Never held across a system call or a wait.</summary>
    internal object Gate => _gate;

    /// <summary>The lock owner this session was built with.</summary>
    internal LockOwner Owner => _owner;

    /// <summary>Test hook: runs after the OS object of a new segment exists and before the item is published
    /// (the "creating" window).</summary>
    internal Action<DsmHandle>? AfterOsObjectCreated { get; set; }

    /// <summary>Test hook: runs after a segment's item became Destroying and before its OS object is removed
    /// (the moribund window).</summary>
    internal Action<DsmHandle>? BeforeOsObjectRemoved { get; set; }

    /// <summary>
    /// Creates a segment of <paramref name="size"/> bytes and attaches it (PostgreSQL's dsm_create). It is carved
    /// from the main segment's preallocated region when that has a free run long enough (no system call), else made
    /// with the configured OS implementation. Returns null only with <see cref="DsmCreateFlags.NullIfMaxSegments"/>
    /// when the table is full; otherwise that is <c>too many dynamic shared memory segments</c>.
    /// </summary>
    public DsmSegment? Create(long size, DsmCreateFlags flags = DsmCreateFlags.None)
    {
        if (size <= 0)
            throw new ArgumentOutOfRangeException(nameof(size), size, "a dynamic shared memory segment must have a positive size");
        long objectSize = ShmemSize.Add(size, DsmSegmentHeader.Size);
        int pages = _mainRegion is not null && size <= (long)_mainRegion.PageCount * DsmPageAllocator.PageSize
            ? (int)((size + DsmPageAllocator.PageSize - 1) / DsmPageAllocator.PageSize) : 0;
        int index;
        uint handle;
        lock (_gate)
        {
            ThrowIfDisposed();
            int first = -1;
            LockControl();
            try
            {
                if (!_table.HasRoom(_slot))
                    throw TooManyAttached();
                index = _table.PopFree();
                if (index >= 0)
                {
                    if (pages > 0)
                        first = _mainRegion!.Allocate(pages);
                    handle = _table.HandleFor(index, mainRegion: first >= 0);
                    ref var item = ref _table.Item(index);
                    item.Handle = handle;
                    item.RefCount = 2; // "exists" + this process
                    item.SegmentSize = size;
                    item.CreatorPid = _pid;
                    if (first >= 0)
                    {
                        item.Implementation = DsmImplementation.MainRegion;
                        item.FirstPage = first;
                        item.PageCount = pages;
                        item.State = DsmItemState.Live;
                    }
                    else
                    {
                        item.Implementation = _implementation;
                        item.OwnerSlot = _slot;
                        item.OwnerPid = _pid;
                        item.State = DsmItemState.Creating;
                    }
                    _table.AddEntry(_slot, _pid, handle, DsmAttachmentEntry.Attached); // room checked above
                }
                else
                {
                    handle = 0;
                }
            }
            finally
            {
                UnlockControl();
            }
            if (index < 0)
            {
                if ((flags & DsmCreateFlags.NullIfMaxSegments) != 0)
                    return null;
                throw new ShmemException("too many dynamic shared memory segments",
                    $"All {_table.Capacity} items of the control segment are in use.", "Increase \"dsm_max_segments\".");
            }
            if (first >= 0)
            {
                var region = new ShmemRegion(_mainRegion!.PageAddress(first), size);
                if ((flags & DsmCreateFlags.Zeroed) != 0)
                    ClearRegion(region);
                var segment = new DsmSegment(this, new DsmHandle(handle), index, DsmImplementation.MainRegion, default, region);
                Register(segment);
                return segment;
            }
        }
        return CreateOsObject(index, handle, size, objectSize);
    }

    /// <summary>
    /// Attaches the segment <paramref name="handle"/> names (PostgreSQL's dsm_attach). Null when it is gone: every
    /// holder detached (reference count at most 1), or the handle is stale (its item was reused since). Attaching a
    /// segment this process already has is an error (<see cref="FindMapping"/> first).
    /// </summary>
    public DsmSegment? Attach(DsmHandle handle)
    {
        if (!handle.IsValid)
            return null;
        uint h = handle.Value;
        int index;
        DsmImplementation impl;
        long size;
        int sysVId;
        lock (_gate)
        {
            ThrowIfDisposed();
            if (_byHandle.ContainsKey(h))
                throw new ShmemException("can't attach the same segment more than once",
                    $"Dynamic shared memory segment {handle} is already attached in this process.",
                    "Use FindMapping to get the existing mapping.");
            int first;
            LockControl();
            try
            {
                index = _table.FindLive(h);
                if (index < 0)
                    return null;
                if (!_table.HasRoom(_slot))
                    throw TooManyAttached();
                ref var item = ref _table.Item(index);
                item.RefCount++;
                _table.AddEntry(_slot, _pid, h, DsmAttachmentEntry.Attached);
                impl = item.Implementation;
                size = item.SegmentSize;
                sysVId = item.SysVId;
                first = item.FirstPage;
            }
            finally
            {
                UnlockControl();
            }
            if (impl == DsmImplementation.MainRegion)
            {
                var segment = new DsmSegment(this, handle, index, impl, default, new ShmemRegion(_mainRegion!.PageAddress(first), size));
                Register(segment);
                return segment;
            }
            _byHandle[h] = null; // placeholder: another thread's attach of the same handle fails meanwhile
        }
        DsmMapping mapping;
        try
        {
            if (!DsmOs.TryAttach(_names, impl, DsmObjectKind.Segment, h, sysVId, out mapping))
                throw new ShmemException($"could not attach dynamic shared memory segment {handle}",
                    $"Its object \"{_names.Describe(impl, DsmObjectKind.Segment, h)}\" no longer exists although the control segment lists it.");
            if (mapping.Size != size + DsmSegmentHeader.Size)
            {
                DsmOs.Detach(impl, mapping);
                throw new ShmemCorruptException($"dynamic shared memory segment {handle} has the wrong size",
                    $"Object \"{_names.Describe(impl, DsmObjectKind.Segment, h)}\" has {mapping.Size} bytes, expected {size + DsmSegmentHeader.Size}.");
            }
        }
        catch
        {
            lock (_gate)
                _byHandle.Remove(h);
            ReleaseReference(index, h, DsmAttachmentEntry.Attached);
            throw;
        }
        var attached = new DsmSegment(this, handle, index, impl, mapping, mapping.User);
        lock (_gate)
        {
            _byHandle[h] = attached;
            _order.Add(attached);
        }
        return attached;
    }

    /// <summary>
    /// Detaches <paramref name="segment"/> (PostgreSQL's dsm_detach): runs its on-detach callbacks newest first, each
    /// removed before it runs; unmaps; then drops this process's reference, and the last reference destroys the
    /// segment (OS object removed, or pages returned) and frees its item. Idempotent. A callback that throws does not
    /// stop the detach: the rest run and the detach completes, then the exception is rethrown (several: an
    /// <see cref="AggregateException"/>).
    /// </summary>
    public void Detach(DsmSegment segment)
    {
        CheckOurs(segment);
        if (!segment.BeginDetach())
            return;
        List<Exception>? errors = null;
        while (segment.PopCallback() is { } callback)
        {
            try
            {
                callback(segment);
            }
            catch (Exception e)
            {
                (errors ??= new()).Add(e); // rethrown below, once the segment is fully detached
            }
        }
        uint h = segment.Handle.Value;
        if (segment.Implementation != DsmImplementation.MainRegion)
        {
            int err = DsmOs.Detach(segment.Implementation, segment.Mapping);
            if (err != 0)
                _log.Write(ShmemLogLevel.Warning,
                    $"could not unmap shared memory segment \"{_names.Describe(segment.Implementation, DsmObjectKind.Segment, h)}\": {Libc.StrError(err)}");
        }
        lock (_gate)
        {
            _byHandle.Remove(h);
            _order.Remove(segment);
        }
        ReleaseReference(segment.Index, h, DsmAttachmentEntry.Attached);
        if (errors is { Count: 1 })
            ExceptionDispatchInfo.Capture(errors[0]).Throw();
        if (errors is not null)
            throw new AggregateException($"on-detach callbacks of dynamic shared memory segment {segment.Handle} failed", errors);
    }

    /// <summary>This process's mapping of <paramref name="handle"/>, or null (PostgreSQL's dsm_find_mapping).</summary>
    public DsmSegment? FindMapping(DsmHandle handle)
    {
        lock (_gate)
            return _byHandle.TryGetValue(handle.Value, out var segment) ? segment : null;
    }

    /// <summary>Detaches every segment, newest first, pinned mappings included (PostgreSQL's dsm_backend_shutdown).
    /// One failing segment does not stop the others; failures are rethrown together at the end.</summary>
    public void DetachAll()
    {
        List<Exception>? errors = null;
        while (true)
        {
            DsmSegment[] snapshot;
            lock (_gate)
                snapshot = _order.ToArray();
            if (snapshot.Length == 0)
                break;
            for (int i = snapshot.Length - 1; i >= 0; i--)
            {
                try
                {
                    Detach(snapshot[i]);
                }
                catch (Exception e)
                {
                    (errors ??= new()).Add(e); // rethrown below, after every segment has been detached
                }
            }
            lock (_gate)
                if (_order.Count >= snapshot.Length)
                    break; // no progress: another thread is detaching these right now
        }
        if (errors is not null)
            throw new AggregateException("detaching dynamic shared memory failed", errors);
    }

    /// <summary>Detaches everything (<see cref="DetachAll"/>) and unmaps the control segment.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
        }
        try
        {
            DetachAll();
        }
        finally
        {
            lock (_gate)
            {
                if (!_disposed)
                {
                    _disposed = true;
                    DsmOs.Detach(_implementation, _control);
                }
            }
        }
    }

    private void Register(DsmSegment segment)
    {
        _byHandle[segment.Handle.Value] = segment;
        _order.Add(segment);
    }

    private static ShmemException TooManyAttached() =>
        new("too many dynamic shared memory segments attached by this process",
            $"A process can have at most {DsmControlLayout.MaxAttachmentsPerSlot} segments attached or pinned at once.");

    private static void ClearRegion(ShmemRegion region)
    {
        for (long done = 0; done < region.Size;)
        {
            int chunk = (int)Math.Min(region.Size - done, int.MaxValue & ~4095);
            region.Span(done, chunk).Clear();
            done += chunk;
        }
    }

    private void CheckOurs(DsmSegment segment)
    {
        ArgumentNullException.ThrowIfNull(segment);
        if (!segment.BelongsTo(this))
            throw new ArgumentException($"{segment} belongs to another session", nameof(segment));
    }

    private void CheckAttached(DsmSegment segment)
    {
        CheckOurs(segment);
        if (!segment.IsAttached)
            throw new InvalidOperationException($"{segment} is not attached");
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
