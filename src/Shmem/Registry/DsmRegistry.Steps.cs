using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Locks;

namespace Postmaster.Shmem.Registry;

/// <summary>
/// The locked steps, <see cref="DsmRegistry"/>'s shared-table facet: each takes the session's process-local gate, then
/// the DsmRegistry LWLock, for a few memory operations on one entry, and decides what the caller does next outside
/// both. Writes go between <see cref="DsmRegistryTable.BeginWrite"/> and <see cref="DsmRegistryTable.EndWrite"/>;
/// every state change is followed by a broadcast on the entry's condition variable, after the lock is released.
/// </summary>
internal sealed partial class DsmRegistry
{
    /// <summary>"No claim token": claim tokens start at 1.</summary>
    private const int NoClaim = 0;

    private enum StepKind
    {
        /// <summary>The name is not registered (Release only).</summary>
        Absent,

        /// <summary>The entry is Ready: attach <see cref="Step.Handle"/>.</summary>
        Ready,

        /// <summary>This process now owns the entry (Initialising or Releasing) under claim <see cref="Step.Claim"/>.</summary>
        Claimed,

        /// <summary>Another process owns it: sleep with <see cref="Step.Ticket"/>, then look again.</summary>
        Busy,
    }

    /// <summary>The outcome of one locked step.</summary>
    /// <param name="Pending">Claimed: a segment the previous owner made (or the Ready one being released) that the
    /// caller must drop; 0 if none.</param>
    private readonly record struct Step(StepKind Kind, int Index = -1, int Claim = NoClaim, uint Handle = 0, long Size = 0,
        uint Pending = 0, int OwnerPid = 0, int OwnerSlot = -1, int Ticket = 0,
        DsmRegistryEntryType Type = DsmRegistryEntryType.Segment);

    /// <summary>The fast path: with the lock held shared, the handle and size of <paramref name="key"/> if it is Ready.</summary>
    private bool FindReady(ReadOnlySpan<byte> key, uint hash, out uint handle, out long size, out DsmRegistryEntryType type)
    {
        lock (_gate)
        {
            _owner.Acquire(_lock, LWLockMode.Shared);
            try
            {
                int i = _table.Find(key, hash);
                if (i >= 0)
                {
                    ref var e = ref _table.Entry(i);
                    if (e.State == DsmRegistryEntryState.Ready)
                    {
                        handle = e.Handle;
                        size = e.SegmentSize;
                        type = e.Type;
                        return true;
                    }
                }
            }
            finally
            {
                _owner.Release(_lock);
            }
        }
        handle = 0;
        size = 0;
        type = DsmRegistryEntryType.Segment;
        return false;
    }

    /// <summary>For <see cref="GetNamedSegment"/>: Ready → attach; Free or Failed → claimed to initialise; busy → wait,
    /// unless <paramref name="takeOver"/> is the entry's claim token (its owner was found dead): then claimed, with the
    /// owner's pending segment to drop.</summary>
    private Step ClaimForInit(string name, ReadOnlySpan<byte> key, uint hash, long size, DsmRegistryEntryType type, int takeOver)
    {
        lock (_gate)
        {
            _owner.Acquire(_lock, LWLockMode.Exclusive);
            try
            {
                int i = _table.Find(key, hash);
                if (i < 0)
                {
                    i = _table.Allocate(key, hash);
                    if (i < 0)
                        throw new ShmemException("too many named DSM segments",
                            $"The DSM registry holds at most {_table.Capacity} names; could not register \"{name}\".",
                            "Release names that are no longer used, or increase the registry's capacity.");
                    return ClaimLocked(i, DsmRegistryEntryState.Initialising, size, pending: 0, type);
                }
                ref var e = ref _table.Entry(i);
                switch (e.State)
                {
                    case DsmRegistryEntryState.Ready:
                        return new Step(StepKind.Ready, i, Handle: e.Handle, Size: e.SegmentSize, Type: e.Type);
                    case DsmRegistryEntryState.Failed:
                        return ClaimLocked(i, DsmRegistryEntryState.Initialising, size, e.PendingHandle, type, e.Type);
                    case DsmRegistryEntryState.Initialising or DsmRegistryEntryState.Releasing:
                        return e.Claim == takeOver
                            ? ClaimLocked(i, DsmRegistryEntryState.Initialising, size, e.PendingHandle, type, e.Type)
                            : BusyLocked(i, ref e);
                    default:
                        throw DsmRegistryTable.Corrupt($"entry {i} found by name is in state {e.State}");
                }
            }
            finally
            {
                _owner.Release(_lock);
            }
        }
    }

    /// <summary>For <see cref="Release"/>: absent → nothing; Ready or Failed → claimed (Releasing), with the segment
    /// to drop; busy → wait, or claimed if <paramref name="takeOver"/> matches (its owner died).</summary>
    private Step ClaimForRelease(ReadOnlySpan<byte> key, uint hash, int takeOver)
    {
        lock (_gate)
        {
            _owner.Acquire(_lock, LWLockMode.Exclusive);
            try
            {
                int i = _table.Find(key, hash);
                if (i < 0)
                    return new Step(StepKind.Absent);
                ref var e = ref _table.Entry(i);
                switch (e.State)
                {
                    case DsmRegistryEntryState.Ready:
                        return ClaimLocked(i, DsmRegistryEntryState.Releasing, 0, e.Handle, e.Type);
                    case DsmRegistryEntryState.Failed:
                        return ClaimLocked(i, DsmRegistryEntryState.Releasing, 0, e.PendingHandle, e.Type);
                    case DsmRegistryEntryState.Initialising or DsmRegistryEntryState.Releasing:
                        return e.Claim == takeOver
                            ? ClaimLocked(i, DsmRegistryEntryState.Releasing, 0, e.PendingHandle, e.Type)
                            : BusyLocked(i, ref e);
                    default:
                        throw DsmRegistryTable.Corrupt($"entry {i} found by name is in state {e.State}");
                }
            }
            finally
            {
                _owner.Release(_lock);
            }
        }
    }

    /// <summary>Makes entry <paramref name="i"/> this process's, in <paramref name="state"/>, with a new claim token.
    /// <paramref name="pending"/> stays recorded until the new owner replaces it, so a death before it is dropped
    /// leaves it to the next owner. <paramref name="type"/> is what the entry will hold; the returned step carries
    /// <paramref name="pendingType"/>, what the pending segment holds (the previous owner's type). Lock held exclusively.</summary>
    private Step ClaimLocked(int i, DsmRegistryEntryState state, long size, uint pending, DsmRegistryEntryType type,
        DsmRegistryEntryType? pendingType = null)
    {
        ref var e = ref _table.Entry(i);
        DsmRegistryTable.BeginWrite(ref e);
        e.Type = type;
        e.TotalSize = 0;
        e.OwnerPid = _pid;
        e.OwnerSlot = _slot;
        e.Handle = 0;
        e.SegmentSize = size;
        e.PendingHandle = pending;
        e.Claim = e.Claim == int.MaxValue ? NoClaim + 1 : e.Claim + 1;
        if (state == DsmRegistryEntryState.Initialising)
        {
            e.Attempts++;
            e.InitialisedByPid = 0;
        }
        _table.SetState(ref e, state);
        DsmRegistryTable.EndWrite(ref e);
        return new Step(StepKind.Claimed, i, e.Claim, Size: size, Pending: pending, Type: pendingType ?? type);
    }

    /// <summary>Counts the caller as a waiter on entry <paramref name="i"/> and describes its owner. Lock held.</summary>
    private static Step BusyLocked(int i, ref DsmRegistryEntry e) =>
        new(StepKind.Busy, i, e.Claim, OwnerPid: e.OwnerPid, OwnerSlot: e.OwnerSlot, Ticket: e.Changed.PrepareToSleep());

    /// <summary>Records the segment just created for a claimed entry, before it is pinned.</summary>
    private void RecordPending(string name, Step claim, DsmHandle handle)
    {
        lock (_gate)
        {
            _owner.Acquire(_lock, LWLockMode.Exclusive);
            try
            {
                ref var e = ref OwnedEntry(name, claim, DsmRegistryEntryState.Initialising);
                DsmRegistryTable.BeginWrite(ref e);
                e.PendingHandle = handle.Value;
                DsmRegistryTable.EndWrite(ref e);
            }
            finally
            {
                _owner.Release(_lock);
            }
        }
    }

    /// <summary>Initialised and pinned: the entry becomes Ready with <paramref name="handle"/> (holding
    /// <paramref name="totalSize"/> bytes in all); waiters wake.</summary>
    private void Publish(string name, Step claim, DsmHandle handle, long totalSize)
    {
        lock (_gate)
        {
            _owner.Acquire(_lock, LWLockMode.Exclusive);
            try
            {
                ref var e = ref OwnedEntry(name, claim, DsmRegistryEntryState.Initialising);
                DsmRegistryTable.BeginWrite(ref e);
                e.Handle = handle.Value;
                e.PendingHandle = 0;
                e.OwnerPid = 0;
                e.OwnerSlot = -1;
                e.InitialisedByPid = _pid;
                e.TotalSize = totalSize;
                _table.SetState(ref e, DsmRegistryEntryState.Ready);
                DsmRegistryTable.EndWrite(ref e);
            }
            finally
            {
                _owner.Release(_lock);
            }
        }
        _table.Entry(claim.Index).Changed.Broadcast();
    }

    /// <summary>The initialisation failed and its segment is gone: the entry becomes Failed, so the next caller (a
    /// waiter, woken here) initialises again. Does nothing if the entry is no longer this claim's. Never throws for
    /// the entry's state: it runs on an error path.</summary>
    private void MarkFailed(Step claim)
    {
        lock (_gate)
        {
            _owner.Acquire(_lock, LWLockMode.Exclusive);
            try
            {
                ref var e = ref _table.Entry(claim.Index);
                if (!IsOwnedBy(ref e, claim, DsmRegistryEntryState.Initialising))
                    return;
                DsmRegistryTable.BeginWrite(ref e);
                e.PendingHandle = 0;
                e.SegmentSize = 0;
                e.OwnerPid = 0;
                e.OwnerSlot = -1;
                e.InitialisedByPid = _pid;
                _table.SetState(ref e, DsmRegistryEntryState.Failed);
                DsmRegistryTable.EndWrite(ref e);
            }
            finally
            {
                _owner.Release(_lock);
            }
        }
        _table.Entry(claim.Index).Changed.Broadcast();
    }

    /// <summary>Released: the entry becomes Free (its name is gone); waiters wake and create the name anew.</summary>
    private void FreeEntry(string name, Step claim)
    {
        lock (_gate)
        {
            _owner.Acquire(_lock, LWLockMode.Exclusive);
            try
            {
                ref var e = ref OwnedEntry(name, claim, DsmRegistryEntryState.Releasing);
                DsmRegistryTable.BeginWrite(ref e);
                e.Handle = 0;
                e.PendingHandle = 0;
                e.SegmentSize = 0;
                e.OwnerPid = 0;
                e.OwnerSlot = -1;
                e.InitialisedByPid = 0;
                e.Attempts = 0;
                e.Type = DsmRegistryEntryType.Segment;
                e.TotalSize = 0;
                _table.SetState(ref e, DsmRegistryEntryState.Free); // the name bytes stay; Find skips Free entries
                DsmRegistryTable.EndWrite(ref e);
            }
            finally
            {
                _owner.Release(_lock);
            }
        }
        _table.Entry(claim.Index).Changed.Broadcast();
    }

    /// <summary>The entry of <paramref name="claim"/>, checked to be still this process's in <paramref name="state"/>.
    /// Another process takes an entry over only when it finds the owner dead, so a mismatch means the table or this
    /// process's slot record was overwritten. Lock held.</summary>
    private ref DsmRegistryEntry OwnedEntry(string name, Step claim, DsmRegistryEntryState state)
    {
        ref var e = ref _table.Entry(claim.Index);
        if (!IsOwnedBy(ref e, claim, state))
            throw new ShmemException($"DSM registry entry \"{name}\" was taken over by another process",
                $"Entry {claim.Index} is {e.State} with claim {e.Claim} by process {e.OwnerPid}; this process (pid {_pid}, " +
                $"slot {_slot}) held it {state} with claim {claim.Claim}.",
                "Another process judged this one dead: its lock owner slot no longer records this pid.");
        return ref e;
    }

    private bool IsOwnedBy(ref DsmRegistryEntry e, Step claim, DsmRegistryEntryState state) =>
        e.State == state && e.Claim == claim.Claim && e.OwnerPid == _pid && e.OwnerSlot == _slot;
}
