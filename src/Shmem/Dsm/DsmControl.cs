using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Locks;

namespace Postmaster.Shmem.Dsm;

/// <summary>
/// The supervisor's side of dynamic shared memory (PostgreSQL's dsm_postmaster_startup / dsm_postmaster_shutdown,
/// plus what PostgreSQL cannot do): creates the control segment at startup, destroys everything at shutdown or full
/// restart, gives back the references of a backend that died, finishes segments whose creator or destroyer died,
/// and lists segments for <c>postmaster shmem</c>. Startup orphan cleanup is <see cref="DsmOrphanCleanup"/>.
/// <para><b>Lifecycle.</b> <see cref="Create"/> after the main segment, before any child starts (the caller stores
/// <see cref="Handle"/> in <see cref="Layout.MainHeader.DsmControlHandle"/>); <see cref="DestroyAll"/> once every
/// child is dead (shutdown, or before reinitialising for a full restart; it clears the main header's handle);
/// <see cref="Dispose"/> unmaps. Tools attach read-only with <see cref="Attach"/>.</para>
/// <para><b>Never blocks.</b> The supervisor does not wait for shared locks without a bound: <see cref="DestroyAll"/>
/// takes no lock (no other process is alive), <see cref="ReconcileSlot"/> and <see cref="FinishAbandoned"/> take the
/// DsmControl lock with a timeout and only for memory operations (system calls and liveness checks run outside it),
/// and <see cref="Inspect"/> reads without locking. None of them throws for a problem in the shared state: they
/// report it in their result and log it.</para>
/// </summary>
internal sealed unsafe partial class DsmControl : IDisposable
{
    /// <summary>The owner slot the supervisor writes in an item it is finishing (backends use slots ≥ 0).</summary>
    public const int SupervisorSlot = -2;

    /// <summary>How long <see cref="ReconcileSlot"/> and <see cref="FinishAbandoned"/> wait for the lock by default.</summary>
    public static readonly TimeSpan DefaultLockTimeout = TimeSpan.FromSeconds(1);

    /// <summary>Control-segment handles tried when a name or key is taken.</summary>
    private const int MaxControlHandleAttempts = 100;

    private readonly InstanceShmem _instance;
    private readonly DsmConfig _config;
    private readonly DsmNames _names;
    private readonly DsmImplementation _implementation;
    private readonly IShmemLogger _log;
    private readonly DsmMapping _mapping;
    private readonly DsmControlTable _table;
    private readonly LWLockHandle _lock;
    private readonly bool _isCreator;
    private bool _destroyed;
    private bool _unmapped;

    private DsmControl(InstanceShmem instance, DsmConfig config, IShmemLogger log, DsmMapping mapping, DsmControlTable table,
        uint handle, bool isCreator)
    {
        _instance = instance;
        _config = config;
        _names = config.Names;
        _implementation = (DsmImplementation)config.Type;
        _log = log;
        _mapping = mapping;
        _table = table;
        _lock = instance.Tranches.Builtin(BuiltinLWLock.DsmControl);
        _isCreator = isCreator;
        Handle = new DsmHandle(handle);
    }

    /// <summary>The control segment's handle: what <see cref="Layout.MainHeader.DsmControlHandle"/> must hold.</summary>
    public DsmHandle Handle { get; }

    /// <summary>Items in the table (dsm_max_segments).</summary>
    public int Capacity => _table.Capacity;

    /// <summary>Attachment records (backend slots).</summary>
    public int SlotCount => _table.SlotCount;

    /// <summary>
    /// Creates the control segment with <paramref name="capacity"/> items (<see cref="DsmControlLayout.DefaultCapacity"/>
    /// unless dsm_max_segments says otherwise) and one attachment record per lock-owner slot of the instance, and
    /// resets the main-region page allocator. Supervisor only, at startup, before any child exists and after
    /// <see cref="DsmOrphanCleanup.Run"/>. For mmap, creates DATADIR/pm_dynshmem (mode 0700) if needed.
    /// </summary>
    public static DsmControl Create(InstanceShmem instance, DsmConfig config, int capacity, IShmemLogger? log = null)
    {
        ArgumentNullException.ThrowIfNull(instance);
        ArgumentNullException.ThrowIfNull(config);
        log ??= NullShmemLogger.Instance;
        int slots = instance.Owners.SlotCount;
        long areaSize = DsmControlLayout.RequiredSize(capacity, slots);
        long objectSize = Layout.ShmemSize.Add(areaSize, DsmSegmentHeader.Size);
        var impl = (DsmImplementation)config.Type;
        if (impl == DsmImplementation.Mmap)
            Directory.CreateDirectory(config.Names.DynShmemDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        instance.DsmMainRegion?.Reset(); // no segment exists yet: every page is free
        for (int attempt = 0; attempt < MaxControlHandleAttempts; attempt++)
        {
            uint handle = (uint)Random.Shared.Next(1, int.MaxValue);
            if (!DsmOs.TryCreate(config.Names, impl, DsmObjectKind.Control, handle, objectSize, out var mapping))
                continue; // taken (a leftover, or a foreign SysV key): try another handle
            var table = DsmControlTable.Initialize(mapping.Address + DsmSegmentHeader.Size, areaSize, capacity, slots, config.Tag, handle);
            log.Write(ShmemLogLevel.Debug, $"dynamic shared memory system will support {capacity} segments");
            log.Write(ShmemLogLevel.Debug, $"created dynamic shared memory control segment {handle} ({objectSize} bytes)");
            return new DsmControl(instance, config, log, mapping, table, handle, isCreator: true);
        }
        throw new ShmemException("could not create dynamic shared memory control segment",
            $"{MaxControlHandleAttempts} names or keys were already taken.");
    }

    /// <summary>Attaches the running instance's control segment for inspection (tools, tests). The result can
    /// <see cref="Inspect"/>, <see cref="ReconcileSlot"/> and <see cref="FinishAbandoned"/>, but not <see cref="DestroyAll"/>.</summary>
    public static DsmControl Attach(InstanceShmem instance, DsmConfig config, IShmemLogger? log = null)
    {
        uint handle = instance.Main.Header.DsmControlHandle;
        var mapping = AttachControlObject(config, handle);
        try
        {
            var table = DsmControlTable.Attach(mapping.Address + DsmSegmentHeader.Size, mapping.Size - DsmSegmentHeader.Size, config.Tag);
            return new DsmControl(instance, config, log ?? NullShmemLogger.Instance, mapping, table, handle, isCreator: false);
        }
        catch
        {
            DsmOs.Detach((DsmImplementation)config.Type, mapping);
            throw;
        }
    }

    /// <summary>Maps control segment <paramref name="handle"/> and checks its OS header (not yet the table).</summary>
    internal static DsmMapping AttachControlObject(DsmConfig config, uint handle)
    {
        if (handle == 0)
            throw new ShmemException("dynamic shared memory control segment is not valid",
                "The main segment records no control segment: the supervisor has not created one.");
        var impl = (DsmImplementation)config.Type;
        if (!DsmOs.TryAttach(config.Names, impl, DsmObjectKind.Control, handle, -1, out var mapping))
            throw new ShmemException("dynamic shared memory control segment is not valid",
                $"Control segment {handle} (\"{config.Names.Describe(impl, DsmObjectKind.Control, handle)}\") does not exist.");
        ref var header = ref mapping.Header;
        if (!header.IsOurs(config.Tag, mapping.Size) || header.Kind != DsmObjectKind.Control || header.Handle != handle)
        {
            DsmOs.Detach(impl, mapping);
            throw new ShmemCorruptException("dynamic shared memory control segment is not valid",
                $"Object \"{config.Names.Describe(impl, DsmObjectKind.Control, handle)}\" does not carry this instance's control header.");
        }
        return mapping;
    }

    /// <summary>
    /// Destroys every remaining segment, pinned ones included, then the control segment, and clears the main
    /// header's handle (PostgreSQL's dsm_postmaster_shutdown). Takes no lock: call it only when no other process of
    /// the instance is alive (shutdown, full restart). Never throws: a corrupt control segment is logged
    /// ("dynamic shared memory control segment is corrupt") and the instance's objects are then found by tag;
    /// failures to remove an object are logged and counted. Idempotent.
    /// </summary>
    public DsmShutdownSummary DestroyAll() => DestroyAll(null);

    /// <summary>As <see cref="DestroyAll()"/>; when the control segment turns out corrupt, the tag scan also removes
    /// SysV segments that <paramref name="evidence"/> proves were created, and never labelled, by this instance's
    /// processes (<see cref="DsmOrphanEvidence.IsUnlabelledOrphan"/>).</summary>
    public DsmShutdownSummary DestroyAll(DsmOrphanEvidence? evidence)
    {
        if (!_isCreator)
            throw new InvalidOperationException("only the supervisor that created the control segment can destroy it");
        if (_destroyed)
            return default;
        _destroyed = true;
        int removed = 0;
        int failures = 0;
        bool corrupt = false;
        string? problem = DsmControlTable.Validate(_mapping.Address + DsmSegmentHeader.Size, _mapping.Size - DsmSegmentHeader.Size, _config.Tag);
        if (problem is not null)
        {
            corrupt = true;
            _log.Write(ShmemLogLevel.Log, "dynamic shared memory control segment is corrupt");
            _log.Write(ShmemLogLevel.Debug, $"control segment {Handle}: {problem}");
        }
        else
        {
            int count = _table.Header.ItemCount;
            for (int i = 0; i < count; i++)
            {
                var item = _table.Item(i); // a copy
                if (item.State == DsmItemState.Free || item.Implementation is DsmImplementation.MainRegion or DsmImplementation.None)
                    continue;
                int sysVId = item.State == DsmItemState.Live ? item.SysVId : -1;
                int err = DsmOs.Destroy(_names, item.Implementation, DsmObjectKind.Segment, item.Handle, sysVId, item.OwnerPid);
                Tally(err, item.Implementation, item.Handle, ref removed, ref failures);
            }
        }
        Unmap();
        int rc = DsmOs.Destroy(_names, _implementation, DsmObjectKind.Control, Handle.Value, _mapping.SysVId);
        if (rc != 0 && rc != Errno.ENOENT)
        {
            failures++;
            _log.Write(ShmemLogLevel.Log,
                $"could not remove dynamic shared memory control segment \"{_names.Describe(_implementation, DsmObjectKind.Control, Handle.Value)}\": {Libc.StrError(rc)}");
        }
        if (corrupt)
        {
            var swept = DsmOrphanCleanup.RemoveTagged(_config, _log, evidence);
            removed += swept.Removed;
            failures += swept.Failures;
        }
        ref uint published = ref _instance.Main.Header.DsmControlHandle;
        Interlocked.CompareExchange(ref published, 0, Handle.Value);
        return new DsmShutdownSummary(corrupt, removed, failures);
    }

    /// <summary>Name used in validation results.</summary>
    public const string StructureName = "DSM control segment";

    /// <summary>
    /// Checks the control segment as the supervisor relies on it (reconcile, shutdown and full restart read it): its
    /// OS object header (magic, version, this instance's tag, kind, handle, size of the mapping) and the table
    /// (<see cref="DsmControlTable.Validate"/>: magic, version, geometry, capacity, counts, free-list ends, tag).
    /// Never throws. Null when valid (or already destroyed), else the first problem.
    /// </summary>
    public string? Validate()
    {
        if (_unmapped)
            return null;
        var header = _mapping.Header; // a copy
        if (header.Magic != DsmSegmentHeader.ExpectedMagic)
            return Errors.ShmemProblem.Magic(StructureName, header.Magic, DsmSegmentHeader.ExpectedMagic);
        if (header.Version != DsmSegmentHeader.CurrentVersion)
            return Errors.ShmemProblem.Version(StructureName, header.Version, DsmSegmentHeader.CurrentVersion);
        if (!header.IsOurs(_config.Tag, _mapping.Size) || header.Kind != DsmObjectKind.Control || header.Handle != Handle.Value)
            return $"{StructureName}: object header (tag {header.InstanceTag:x16}, kind {(int)header.Kind}, handle {header.Handle}, " +
                   $"size {header.UserSize}) does not describe control segment {Handle} of this instance";
        return Errors.ShmemProblem.Named(StructureName,
            DsmControlTable.Validate(_mapping.Address + DsmSegmentHeader.Size, _mapping.Size - DsmSegmentHeader.Size, _config.Tag));
    }

    /// <summary>Every non-free item with the slots that hold it: a racy snapshot, read without locking.</summary>
    public IReadOnlyList<DsmSegmentInfo> Inspect()
    {
        var holders = new Dictionary<uint, List<DsmAttachment>>();
        for (int slot = 0; slot < _table.SlotCount; slot++)
        {
            ref var record = ref _table.Record(slot);
            int count = Math.Clamp(Volatile.Read(ref record.Count), 0, DsmControlLayout.MaxAttachmentsPerSlot);
            int pid = Volatile.Read(ref record.Pid);
            for (int e = 0; e < count; e++)
            {
                var entry = _table.Entry(slot, e);
                if (!holders.TryGetValue(entry.Handle, out var list))
                    holders[entry.Handle] = list = new List<DsmAttachment>();
                list.Add(new DsmAttachment(slot, pid, (entry.Flags & DsmAttachmentEntry.Attached) != 0,
                    (entry.Flags & DsmAttachmentEntry.Pinned) != 0));
            }
        }
        var rows = new List<DsmSegmentInfo>();
        int items = Math.Clamp(Volatile.Read(ref _table.Header.ItemCount), 0, _table.Capacity);
        for (int i = 0; i < items; i++)
        {
            var item = _table.Item(i);
            if (item.State == DsmItemState.Free)
                continue;
            rows.Add(new DsmSegmentInfo(new DsmHandle(item.Handle), item.SegmentSize, item.Implementation, (int)item.RefCount,
                item.Pinned != 0, item.State, holders.TryGetValue(item.Handle, out var h) ? h : [],
                item.OwnerPid, item.PinnerPid, item.CreatorPid));
        }
        return rows;
    }

    /// <summary>Unmaps the control segment (does not destroy it).</summary>
    public void Dispose() => Unmap();

    private void Tally(int err, DsmImplementation impl, uint handle, ref int removed, ref int failures)
    {
        if (err == 0)
        {
            removed++;
            _log.Write(ShmemLogLevel.Debug, $"destroyed dynamic shared memory segment {handle}");
        }
        else if (err != Errno.ENOENT)
        {
            failures++;
            _log.Write(ShmemLogLevel.Log,
                $"could not remove shared memory segment \"{_names.Describe(impl, DsmObjectKind.Segment, handle)}\": {Libc.StrError(err)}");
        }
    }

    private void Unmap()
    {
        if (_unmapped)
            return;
        _unmapped = true;
        int err = DsmOs.Detach(_implementation, _mapping);
        if (err != 0)
            _log.Write(ShmemLogLevel.Warning, $"could not unmap dynamic shared memory control segment {Handle}: {Libc.StrError(err)}");
    }
}
