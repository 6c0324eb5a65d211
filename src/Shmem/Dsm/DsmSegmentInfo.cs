namespace Postmaster.Shmem.Dsm;

/// <summary>One backend slot's hold on a segment, as its attachment record lists it.</summary>
/// <param name="Slot">The backend slot.</param>
/// <param name="Pid">The pid that slot's record names.</param>
/// <param name="Attached">The slot has the segment mapped (one reference).</param>
/// <param name="Pinned">The slot pinned the segment (the pin is one reference, and outlives the process).</param>
internal readonly record struct DsmAttachment(int Slot, int Pid, bool Attached, bool Pinned);

/// <summary>One row of <c>postmaster shmem</c>'s dynamic shared memory listing: a racy snapshot of one item.</summary>
/// <param name="ReferenceCount">PostgreSQL's refcnt: 1 = moribund, n ≥ 2 = live with n-1 references.</param>
/// <param name="OwnerPid">The creator (Creating) or destroyer (Destroying); 0 otherwise.</param>
/// <param name="PinnerPid">The process that pinned it (it may have exited since); 0 when not pinned.</param>
internal sealed record DsmSegmentInfo(DsmHandle Handle, long Size, DsmImplementation Implementation, int ReferenceCount,
    bool Pinned, DsmItemState State, IReadOnlyList<DsmAttachment> AttachedBy, int OwnerPid, int PinnerPid, int CreatorPid);
