using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;

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
public sealed unsafe class DsmControl : IDisposable
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
    public DsmShutdownSummary DestroyAll()
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
            var swept = DsmOrphanCleanup.RemoveTagged(_config, _log);
            removed += swept.Removed;
            failures += swept.Failures;
        }
        ref uint published = ref _instance.Main.Header.DsmControlHandle;
        Interlocked.CompareExchange(ref published, 0, Handle.Value);
        return new DsmShutdownSummary(corrupt, removed, failures);
    }

    /// <summary>
    /// Gives back what the dead process of backend slot <paramref name="slot"/> held (PostgreSQL cannot: it restarts
    /// everything). Precondition: the process is dead (throws if its pid is alive) and its lock owner record has not
    /// been reset yet: if that record shows it held or was acquiring the DsmControl lock, the table cannot be trusted
    /// and the result is <see cref="DsmReconcileStatus.DiedHoldingLock"/> (do a full restart).
    /// <para>Every segment the slot had attached loses one reference and is destroyed if none is left (unless pinned:
    /// the pin is a reference). Pins the process made stay, as in PostgreSQL: a pin belongs to the segment, it is
    /// meant to outlive its creator, and only <see cref="DsmSession.Unpin"/>, shutdown or a full restart removes it.
    /// Then the slot's record is cleared, and <see cref="FinishAbandoned"/> runs (items Creating or Destroying whose
    /// owner is dead, this process's included).</para>
    /// </summary>
    public DsmReconcileResult ReconcileSlot(int slot, TimeSpan? lockTimeout = null)
    {
        ref var record = ref _table.Record(slot);
        int pid = Volatile.Read(ref record.Pid);
        if (pid != 0 && ProcessControl.IsAlive(pid))
            throw new InvalidOperationException($"dynamic shared memory slot {slot} belongs to process {pid}, which is alive");
        if (HeldControlLock(slot, pid))
            return new DsmReconcileResult(DsmReconcileStatus.DiedHoldingLock, 0, 0, 0, 0);
        var candidates = AbandonedCandidates();
        var timeout = lockTimeout ?? DefaultLockTimeout;
        if (!TryLock(timeout))
            return new DsmReconcileResult(DsmReconcileStatus.LockTimeout, 0, 0, 0, 0);
        int dropped = 0;
        int destroyed = 0;
        var toDestroy = new List<int>();
        try
        {
            int count = Math.Clamp(Volatile.Read(ref record.Count), 0, DsmControlLayout.MaxAttachmentsPerSlot);
            var entries = _table.Entries(slot);
            int itemCount = _table.Header.ItemCount;
            for (int e = 0; e < count; e++)
            {
                var entry = entries[e];
                int index = _table.Codec.IndexOf(entry.Handle);
                if (entry.Handle == 0 || index >= itemCount)
                    continue;
                ref var item = ref _table.Item(index);
                if (item.Handle != entry.Handle)
                    continue; // stale: finished already
                if ((entry.Flags & DsmAttachmentEntry.Pinned) != 0 && item.PinnerSlot == slot)
                    item.PinnerSlot = -1; // the pin stays; its process is gone
                if ((entry.Flags & DsmAttachmentEntry.Attached) == 0 || item.State != DsmItemState.Live || item.RefCount < 2)
                    continue; // Creating or Destroying by this process: an abandoned item, handled below
                dropped++;
                if (--item.RefCount > 1)
                    continue;
                destroyed++;
                if (BeginSupervisorDestroy(index, ref item))
                    toDestroy.Add(index);
            }
            record.Count = 0;
            record.Pid = 0;
        }
        finally
        {
            Unlock();
        }
        var (finished, failures, _) = FinishItems(candidates, toDestroy, timeout);
        _log.Write(ShmemLogLevel.Debug,
            $"reconciled dynamic shared memory of slot {slot} (process {pid}): {dropped} references dropped, {destroyed} segments destroyed");
        return new DsmReconcileResult(DsmReconcileStatus.Done, dropped, destroyed + finished, finished, failures);
    }

    /// <summary>
    /// Finishes items whose owner died: Creating (the creator died before publishing; its OS object is removed if it
    /// got that far) and Destroying (moribund: the destroyer died or failed before freeing it). Liveness is checked
    /// outside the lock and re-verified under it.
    /// </summary>
    public DsmReconcileResult FinishAbandoned(TimeSpan? lockTimeout = null)
    {
        var candidates = AbandonedCandidates();
        if (candidates.Count == 0)
            return new DsmReconcileResult(DsmReconcileStatus.Done, 0, 0, 0, 0);
        var timeout = lockTimeout ?? DefaultLockTimeout;
        var (finished, failures, timedOut) = FinishItems(candidates, new List<int>(), timeout);
        if (timedOut)
            return new DsmReconcileResult(DsmReconcileStatus.LockTimeout, 0, 0, 0, 0);
        return new DsmReconcileResult(DsmReconcileStatus.Done, 0, finished, finished, failures);
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
            var entries = _table.Entries(slot);
            for (int e = 0; e < count; e++)
            {
                var entry = entries[e];
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

    /// <summary>True when the owner record of <paramref name="slot"/> lists the DsmControl lock, or the lock word names
    /// <paramref name="pid"/> as its exclusive holder.</summary>
    private bool HeldControlLock(int slot, int pid)
    {
        var status = _lock.ReadStatus();
        if (pid != 0 && status.ExclusiveOwnerPid == pid)
            return true;
        if ((uint)slot >= (uint)_instance.Owners.SlotCount)
            return false;
        var inspector = new LWLockInspector(_instance.Owners, _instance.Tranches);
        try
        {
            foreach (var holding in inspector.HeldBy(slot))
                if (holding.Lock == _lock.Id)
                    return true;
        }
        catch (ShmemCorruptException)
        {
            return true; // an unreadable owner record proves nothing: treat the lock as held
        }
        return false;
    }

    /// <summary>Indexes of items Creating or Destroying whose owner is dead, or that this supervisor left Destroying
    /// (an earlier pass that failed). Read without the lock; verified under it later.</summary>
    private List<(int Index, uint Handle, int OwnerPid)> AbandonedCandidates()
    {
        var result = new List<(int, uint, int)>();
        int count = Math.Clamp(Volatile.Read(ref _table.Header.ItemCount), 0, _table.Capacity);
        int me = ProcessControl.CurrentPid;
        for (int i = 0; i < count; i++)
        {
            var item = _table.Item(i);
            if (item.State is not (DsmItemState.Creating or DsmItemState.Destroying))
                continue;
            bool ours = item.OwnerSlot == SupervisorSlot && item.OwnerPid == me;
            if (ours || !ProcessControl.IsAlive(item.OwnerPid))
                result.Add((i, item.Handle, item.OwnerPid));
        }
        return result;
    }

    /// <summary>Marks <paramref name="candidates"/> (re-verified) Destroying by the supervisor, removes their OS objects
    /// and those of <paramref name="toDestroy"/> outside the lock, then frees the items. Returns the number of
    /// abandoned items finished, the failures, and whether the lock could not be taken for the candidates (items
    /// left Destroying by the supervisor because the second lock timed out are picked up by the next pass).</summary>
    private (int Finished, int Failures, bool TimedOut) FinishItems(List<(int Index, uint Handle, int OwnerPid)> candidates, List<int> toDestroy,
        TimeSpan timeout)
    {
        var creators = new Dictionary<int, int>();
        int finished = 0;
        bool timedOut = false;
        if (candidates.Count > 0)
        {
            if (TryLock(timeout))
            {
                try
                {
                    finished = ClaimAbandoned(candidates, toDestroy, creators);
                }
                finally
                {
                    Unlock();
                }
            }
            else
            {
                timedOut = true;
            }
        }
        int failures = 0;
        var done = new List<int>();
        foreach (int index in toDestroy)
        {
            var item = _table.Item(index); // ours now: nobody else touches a Destroying item owned by the supervisor
            int sysVId = item.SysVId;
            int err = DsmOs.Destroy(_names, item.Implementation, DsmObjectKind.Segment, item.Handle, sysVId,
                creators.GetValueOrDefault(index));
            if (err == 0 || err == Errno.ENOENT)
            {
                _log.Write(ShmemLogLevel.Debug, $"destroyed dynamic shared memory segment {item.Handle}");
                done.Add(index);
            }
            else
            {
                failures++;
                _log.Write(ShmemLogLevel.Warning,
                    $"could not remove shared memory segment \"{_names.Describe(item.Implementation, DsmObjectKind.Segment, item.Handle)}\": {Libc.StrError(err)}");
            }
        }
        if (done.Count > 0 && TryLock(timeout))
        {
            try
            {
                foreach (int index in done)
                    if (_table.Item(index).State == DsmItemState.Destroying)
                        _table.Free(index);
            }
            finally
            {
                Unlock();
            }
        }
        return (finished, failures, timedOut);
    }

    /// <summary>Re-verifies each candidate (same handle, owner and state as seen without the lock) and makes it the
    /// supervisor's to destroy; returns how many. Remembers the creator pid of Creating items (a SysV object whose
    /// creator died before writing its header is recognised by it). Lock held.</summary>
    private int ClaimAbandoned(List<(int Index, uint Handle, int OwnerPid)> candidates, List<int> toDestroy, Dictionary<int, int> creators)
    {
        int claimed = 0;
        foreach (var (index, handle, ownerPid) in candidates)
        {
            ref var item = ref _table.Item(index);
            if (item.Handle != handle || item.OwnerPid != ownerPid ||
                item.State is not (DsmItemState.Creating or DsmItemState.Destroying))
                continue; // changed meanwhile
            creators[index] = item.State == DsmItemState.Creating ? ownerPid : 0;
            claimed++;
            if (BeginSupervisorDestroy(index, ref item))
                toDestroy.Add(index);
        }
        return claimed;
    }

    /// <summary>Item at its base count: a main-region one gives its pages back and is freed at once (false); an
    /// OS-backed one becomes Destroying with the supervisor as owner (true: remove its object, then free it).
    /// Lock held.</summary>
    private bool BeginSupervisorDestroy(int index, ref DsmControlItem item)
    {
        if (item.Implementation == DsmImplementation.MainRegion)
        {
            if (item.State == DsmItemState.Live)
                _instance.DsmMainRegion?.Free(item.FirstPage, item.PageCount);
            _table.Free(index);
            return false;
        }
        item.RefCount = 1;
        item.State = DsmItemState.Destroying;
        item.OwnerSlot = SupervisorSlot;
        item.OwnerPid = ProcessControl.CurrentPid;
        return true;
    }

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

    /// <summary>Takes the DsmControl lock exclusively, waiting at most <paramref name="timeout"/>. The supervisor has
    /// no owner record: if it died holding the lock, every backend goes down with it anyway.</summary>
    private bool TryLock(TimeSpan timeout)
    {
        ref var l = ref _lock.Lock;
        if (!LWLockOps.TryAcquireFast(ref l.State, LWLockMode.Exclusive) &&
            !LWLockOps.AcquireSlow(ref l.State, LWLockMode.Exclusive, Deadline.After(timeout)))
            return false;
        l.ExclusiveOwnerPid = ProcessControl.CurrentPid;
        l.ExclusiveOwnerSlot = LockOwner.NoSlot;
        return true;
    }

    private void Unlock()
    {
        ref var l = ref _lock.Lock;
        l.ExclusiveOwnerSlot = LockOwner.NoSlot;
        l.ExclusiveOwnerPid = 0;
        LWLockOps.Release(ref l.State, LWLockMode.Exclusive);
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
