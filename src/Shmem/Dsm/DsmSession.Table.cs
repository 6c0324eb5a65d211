using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Locks;

namespace Postmaster.Shmem.Dsm;

/// <summary>
/// The shared-table side of <see cref="DsmSession"/>: the short critical sections under the DsmControl lock that
/// publish a new segment, retry a name collision, give back a failed creation, drop a reference and destroy a
/// segment whose last reference is gone. Each takes the process-local gate, then the lock, in that order; system
/// calls run outside both.
/// </summary>
internal sealed unsafe partial class DsmSession
{
    private DsmSegment CreateOsObject(int index, uint handle, long size, long objectSize)
    {
        DsmMapping mapping;
        try
        {
            for (int attempt = 0; ; attempt++)
            {
                if (DsmOs.TryCreate(_names, _implementation, DsmObjectKind.Segment, handle, objectSize, out mapping))
                    break;
                if (attempt >= MaxCollisionRetries)
                    throw new ShmemException("could not create dynamic shared memory segment",
                        $"{MaxCollisionRetries + 1} names or keys were already taken, the last \"{_names.Describe(_implementation, DsmObjectKind.Segment, handle)}\".",
                        "Remove stale shared memory objects, or use another dynamic_shared_memory_type.");
                handle = NextHandle(index, handle);
            }
        }
        catch
        {
            Abandon(index, handle);
            throw;
        }
        AfterOsObjectCreated?.Invoke(new DsmHandle(handle));
        var segment = new DsmSegment(this, new DsmHandle(handle), index, _implementation, mapping, mapping.User);
        lock (_gate)
        {
            LockControl();
            try
            {
                ref var item = ref _table.Item(index);
                item.SysVId = mapping.SysVId;
                item.OwnerSlot = -1;
                item.OwnerPid = 0;
                item.State = DsmItemState.Live;
            }
            finally
            {
                UnlockControl();
            }
            Register(segment);
        }
        return segment;
    }

    /// <summary>After a name collision: the item's next generation, and its handle (the record entry follows).</summary>
    private uint NextHandle(int index, uint handle)
    {
        lock (_gate)
        {
            LockControl();
            try
            {
                ref var item = ref _table.Item(index);
                item.Generation = _table.Codec.NextGeneration(item.Generation);
                uint next = _table.HandleFor(index, mainRegion: false);
                item.Handle = next;
                _table.RenameEntry(_slot, handle, next);
                return next;
            }
            finally
            {
                UnlockControl();
            }
        }
    }

    /// <summary>A creation failed (DsmOs removed whatever it made): give the reserved item back.</summary>
    private void Abandon(int index, uint handle)
    {
        lock (_gate)
        {
            LockControl();
            try
            {
                _table.ClearEntry(_slot, handle, DsmAttachmentEntry.Attached);
                _table.Free(index);
            }
            finally
            {
                UnlockControl();
            }
        }
    }

    /// <summary>Drops one reference held through this slot's <paramref name="entryFlag"/> and destroys the segment
    /// if that was the last.</summary>
    private void ReleaseReference(int index, uint h, uint entryFlag)
    {
        bool destroy;
        DsmImplementation impl;
        int sysVId;
        lock (_gate)
        {
            LockControl();
            try
            {
                ref var item = ref _table.Item(index);
                if (item.Handle != h || item.State != DsmItemState.Live || item.RefCount < 2)
                    throw new ShmemCorruptException($"dynamic shared memory segment {h} is not in the control segment any more",
                        $"Item {index} has handle {item.Handle}, state {item.State}, reference count {item.RefCount}.");
                _table.ClearEntry(_slot, h, entryFlag);
                impl = item.Implementation;
                sysVId = item.SysVId;
                destroy = DropLocked(index, ref item);
            }
            finally
            {
                UnlockControl();
            }
        }
        if (destroy)
            FinishDestroy(index, h, impl, sysVId);
    }

    /// <summary>One reference less. At the base count a main-region segment gives its pages back and its item is
    /// freed at once (returns false); an OS-backed one becomes Destroying with this process as owner (returns true:
    /// the caller removes the object outside the lock, then frees the item). Lock held.</summary>
    private bool DropLocked(int index, ref DsmControlItem item)
    {
        if (--item.RefCount > 1)
            return false;
        if (item.Implementation == DsmImplementation.MainRegion)
        {
            _mainRegion!.Free(item.FirstPage, item.PageCount);
            _table.Free(index);
            return false;
        }
        item.State = DsmItemState.Destroying;
        item.OwnerSlot = _slot;
        item.OwnerPid = _pid;
        return true;
    }

    /// <summary>Removes a moribund segment's OS object, then frees its item. On failure it stays moribund (WARNING)
    /// and the supervisor removes it at shutdown or restart.</summary>
    private void FinishDestroy(int index, uint h, DsmImplementation impl, int sysVId)
    {
        BeforeOsObjectRemoved?.Invoke(new DsmHandle(h));
        int err = DsmOs.Destroy(_names, impl, DsmObjectKind.Segment, h, sysVId);
        if (err != 0 && err != Errno.ENOENT)
        {
            _log.Write(ShmemLogLevel.Warning,
                $"could not remove shared memory segment \"{_names.Describe(impl, DsmObjectKind.Segment, h)}\": {Libc.StrError(err)}");
            return;
        }
        lock (_gate)
        {
            LockControl();
            try
            {
                ref var item = ref _table.Item(index);
                if (item.Handle == h && item.State == DsmItemState.Destroying)
                    _table.Free(index);
            }
            finally
            {
                UnlockControl();
            }
        }
    }

    private ref DsmControlItem ItemOf(DsmSegment segment)
    {
        ref var item = ref _table.Item(segment.Index);
        if (item.Handle != segment.Handle.Value || item.State != DsmItemState.Live)
            throw new ShmemCorruptException($"dynamic shared memory segment {segment.Handle} is not in the control segment any more",
                $"Item {segment.Index} has handle {item.Handle}, state {item.State}.");
        return ref item;
    }

    private void LockControl() => _owner.Acquire(_lock, LWLockMode.Exclusive);

    private void UnlockControl() => _owner.Release(_lock);
}
