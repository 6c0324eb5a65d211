using Postmaster.Shmem.Errors;

namespace Postmaster.Shmem.Dsm;

/// <summary>
/// Pinning, <see cref="DsmSession"/>'s lifetime facet: a segment pin (one more reference, owned by the segment, not by
/// any process: PostgreSQL's dsm_pin_segment / dsm_unpin_segment) and a mapping pin (this process keeps its mapping
/// past <see cref="DsmSegment.Dispose"/>: dsm_pin_mapping / dsm_unpin_mapping).
/// </summary>
internal sealed unsafe partial class DsmSession
{
    /// <summary>Keeps <paramref name="segment"/> alive with no process attached, until <see cref="Unpin"/>, shutdown
    /// or a full restart (PostgreSQL's dsm_pin_segment): the pin is one more reference. The pin belongs to the
    /// segment, not to this process: it survives this process's exit and death.</summary>
    public void Pin(DsmSegment segment)
    {
        CheckAttached(segment);
        uint h = segment.Handle.Value;
        lock (_gate)
        {
            LockControl();
            try
            {
                ref var item = ref ItemOf(segment);
                if (item.Pinned != 0)
                    throw new ShmemException("cannot pin a segment that is already pinned",
                        $"Dynamic shared memory segment {segment.Handle} was pinned by process {item.PinnerPid}.");
                item.Pinned = 1;
                item.RefCount++;
                item.PinnerSlot = _slot;
                item.PinnerPid = _pid;
                _table.AddEntry(_slot, _pid, h, DsmAttachmentEntry.Pinned); // the Attached entry exists: no room needed
            }
            finally
            {
                UnlockControl();
            }
        }
    }

    /// <summary>Removes the pin of the segment <paramref name="handle"/> names; the caller need not be attached
    /// (PostgreSQL's dsm_unpin_segment). If that was the last reference, the segment is destroyed.</summary>
    public void Unpin(DsmHandle handle) => UnpinCore(handle, strict: true);

    /// <summary>
    /// Removes the pin of <paramref name="handle"/> if the segment still exists and is pinned, and says whether it did;
    /// never throws for a segment that is gone or unpinned. For cleaning up after a process that died between pinning
    /// a segment and recording that it had (the DSM registry's takeover of a dead initialiser's entry).
    /// </summary>
    internal bool UnpinIfPinned(DsmHandle handle) => UnpinCore(handle, strict: false);

    /// <summary><see cref="Unpin"/>; with <paramref name="strict"/> false, an unknown or unpinned segment returns false
    /// instead of throwing.</summary>
    private bool UnpinCore(DsmHandle handle, bool strict)
    {
        uint h = handle.Value;
        int index;
        bool destroy;
        DsmImplementation impl;
        int sysVId;
        lock (_gate)
        {
            ThrowIfDisposed();
            LockControl();
            try
            {
                index = _table.FindLive(h);
                if (index < 0)
                {
                    if (strict)
                        throw new ShmemException("cannot unpin unknown segment handle", $"No live segment has handle {handle}.");
                    return false;
                }
                ref var item = ref _table.Item(index);
                if (item.Pinned == 0)
                {
                    if (strict)
                        throw new ShmemException("cannot unpin a segment that is not pinned", $"Segment {handle} is not pinned.");
                    return false;
                }
                if (item.PinnerSlot >= 0)
                    _table.ClearEntry(item.PinnerSlot, h, DsmAttachmentEntry.Pinned);
                item.Pinned = 0;
                item.PinnerSlot = -1;
                item.PinnerPid = 0;
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
        return true;
    }

    /// <summary>Makes the mapping last until <see cref="Detach"/> or <see cref="DetachAll"/>: <see cref="DsmSegment.Dispose"/>
    /// then leaves it attached (PostgreSQL's dsm_pin_mapping: session lifetime instead of the current scope).</summary>
    public void PinMapping(DsmSegment segment)
    {
        CheckAttached(segment);
        segment.SetMappingPinned(true);
    }

    /// <summary>Undoes <see cref="PinMapping"/>: <see cref="DsmSegment.Dispose"/> detaches again.</summary>
    public void UnpinMapping(DsmSegment segment)
    {
        CheckAttached(segment);
        segment.SetMappingPinned(false);
    }
}
