using Postmaster.Shmem;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Locks;
using Xunit;

namespace Postmaster.Tests.Locks;

/// <summary>Owner bookkeeping: the shared per-slot record, limits, ReleaseAll, slot assignment.</summary>
public sealed class LockOwnerTests : IDisposable
{
    private readonly LockTestSegment _seg = new("owner", locks: LockOwner.MaxHeldLocks + 8);

    public void Dispose() => _seg.Dispose();

    [Fact]
    public void The_201st_held_lock_throws_too_many_LWLocks_taken()
    {
        using var owner = _seg.Owner(0);
        for (int i = 0; i < LockOwner.MaxHeldLocks; i++)
            owner.Acquire(_seg.Lock(i), i % 2 == 0 ? LWLockMode.Exclusive : LWLockMode.Shared);
        Assert.Equal(LockOwner.MaxHeldLocks, owner.HeldCount);

        var e = Assert.Throws<LWLockException>(() => owner.Acquire(_seg.Lock(LockOwner.MaxHeldLocks), LWLockMode.Exclusive));
        Assert.Equal("too many LWLocks taken", e.Message);
        Assert.Contains("200", e.Detail);
        Assert.Throws<LWLockException>(() => owner.TryAcquire(_seg.Lock(LockOwner.MaxHeldLocks), LWLockMode.Shared));
        Assert.True(_seg.Lock(LockOwner.MaxHeldLocks).ReadStatus().IsFree); // nothing was taken

        owner.ReleaseAll();
        Assert.Equal(0, owner.HeldCount);
        for (int i = 0; i <= LockOwner.MaxHeldLocks; i++)
            Assert.True(_seg.Lock(i).ReadStatus().IsFree, $"lock {i} is still held");
    }

    [Fact]
    public void The_slot_record_lists_held_locks_in_order_and_release_in_any_order_keeps_it_exact()
    {
        using var owner = _seg.Owner(2);
        var inspector = _seg.Inspector();
        for (int i = 0; i < 4; i++)
            owner.Acquire(_seg.Lock(i), i == 1 ? LWLockMode.Shared : LWLockMode.Exclusive);

        var held = inspector.HeldBy(2);
        Assert.Equal([_seg.Lock(0).Id, _seg.Lock(1).Id, _seg.Lock(2).Id, _seg.Lock(3).Id], held.Select(h => h.Lock));
        Assert.All(held, h => Assert.Equal(HeldLockPhase.Held, h.Phase));
        Assert.All(held, h => Assert.Equal(Environment.ProcessId, h.Pid));
        Assert.All(held, h => Assert.Equal(LockTestSegment.TestTranche, h.TrancheName));
        Assert.Equal(LWLockMode.Shared, held[1].Mode);
        Assert.Equal(LWLockMode.Shared, owner.HeldMode(_seg.Lock(1)));

        owner.Release(_seg.Lock(1)); // out of order
        Assert.Equal([_seg.Lock(0).Id, _seg.Lock(2).Id, _seg.Lock(3).Id], inspector.HeldBy(2).Select(h => h.Lock));
        Assert.False(owner.Holds(_seg.Lock(1)));
        owner.Release(_seg.Lock(3)); // LIFO
        Assert.Equal([_seg.Lock(0).Id, _seg.Lock(2).Id], inspector.HeldBy(2).Select(h => h.Lock));

        owner.ReleaseAll();
        Assert.Empty(inspector.HeldBy(2));
        Assert.True(_seg.Lock(0).ReadStatus().IsFree);
        Assert.True(_seg.Lock(2).ReadStatus().IsFree);
    }

    [Fact]
    public void Inspecting_a_lock_reports_its_exclusive_owner_and_shared_holders()
    {
        using var a = _seg.Owner(0);
        using var b = _seg.Owner(1);
        var inspector = _seg.Inspector();
        a.Acquire(_seg.Lock(0), LWLockMode.Exclusive);
        a.Acquire(_seg.Lock(1), LWLockMode.Shared);
        b.Acquire(_seg.Lock(1), LWLockMode.Shared);

        var report = inspector.Inspect(_seg.Lock(0));
        Assert.Equal(LockTestSegment.TestTranche, report.TrancheName);
        Assert.True(report.Status.IsExclusive);
        Assert.Equal(0, report.Status.ExclusiveOwnerSlot);
        Assert.Equal(Environment.ProcessId, report.Status.ExclusiveOwnerPid);
        Assert.Equal(0, Assert.Single(report.Holdings).Slot);
        Assert.False(report.IsOwnerDead);

        report = inspector.Inspect(_seg.Lock(1));
        Assert.Equal(2, report.Status.SharedHolders);
        Assert.Equal([0, 1], report.Holdings.Select(h => h.Slot));
        Assert.False(inspector.IsOwnerDead(_seg.Lock(1)));
        Assert.False(inspector.IsSlotOwnerDead(0));
    }

    [Fact]
    public void Locks_in_a_dsm_segment_are_identified_by_its_handle_and_their_offset()
    {
        const uint DsmHandle = 0x1234_5678;
        using var dsm = new LockTestSegment("dsm-locks");
        var dsmSegment = new LWLockSegment(DsmHandle, dsm.Region);
        using var owner = _seg.Owner(0);
        int tranche = _seg.Tranches.Register(owner, "DsmWorkerLocks");
        var lwlock = dsmSegment.InitializeLock(dsm.DataOffset, tranche);

        owner.Acquire(lwlock, LWLockMode.Exclusive);
        var entry = Assert.Single(_seg.Inspector().HeldBy(0));
        Assert.Equal(new LWLockId(DsmHandle, dsm.DataOffset), entry.Lock);
        Assert.Equal("DsmWorkerLocks", entry.TrancheName);
        // Same offset, other segment: a different lock.
        owner.Acquire(_seg.Segment.InitializeLock(dsm.DataOffset, tranche), LWLockMode.Exclusive);
        Assert.Equal(2, owner.HeldCount);
        owner.ReleaseAll();
        Assert.True(lwlock.ReadStatus().IsFree);
    }

    [Fact]
    public void Dispose_releases_everything_and_frees_the_slot_for_reuse()
    {
        var owner = _seg.Owner(3);
        owner.Acquire(_seg.Lock(0), LWLockMode.Exclusive);
        owner.Acquire(_seg.Lock(1), LWLockMode.Shared);
        Assert.Throws<ShmemException>(() => _seg.Owner(3)); // in use by this (live) process

        owner.Dispose();
        Assert.Equal(0, _seg.Owners.RecordedPid(3));
        Assert.Equal(0, _seg.Owners.ReadHeldCount(3));
        Assert.True(_seg.Lock(0).ReadStatus().IsFree);
        Assert.Throws<ObjectDisposedException>(() => owner.Acquire(_seg.Lock(0), LWLockMode.Exclusive));
        using var again = _seg.Owner(3);
        Assert.Equal(Environment.ProcessId, _seg.Owners.RecordedPid(3));
    }

    [Fact]
    public void Critical_sections_nest_and_are_recorded_in_the_slot()
    {
        using var owner = _seg.Owner(4);
        owner.EnterCriticalSection();
        owner.EnterCriticalSection();
        Assert.Equal(2, _seg.Owners.CriticalSectionDepth(4));
        owner.ExitCriticalSection();
        owner.ExitCriticalSection();
        Assert.Equal(0, owner.CriticalSectionDepth);
        Assert.Throws<InvalidOperationException>(owner.ExitCriticalSection);
    }

    [Fact]
    public void Owner_table_attach_validates_the_header()
    {
        var region = _seg.Region.Slice(_seg.OwnersOffset, _seg.LocksOffset - _seg.OwnersOffset);
        Assert.True(LWLockOwnerTable.IsSane(region));
        Assert.Equal(16, LWLockOwnerTable.Attach(region).SlotCount);

        Corrupt(region, offset: 4, () => Assert.Throws<ShmemCorruptException>(() => LWLockOwnerTable.Attach(region))); // version
        Corrupt(region, offset: 0, () => Assert.False(LWLockOwnerTable.IsSane(region)));                               // magic
        Corrupt(region, offset: 16, () => Assert.Throws<ShmemCorruptException>(() => LWLockOwnerTable.Attach(region))); // slot count
        Assert.Throws<ShmemCorruptException>(() => LWLockOwnerTable.Attach(region.Slice(0, 128)));                      // too short
        Assert.Throws<ArgumentOutOfRangeException>(() => LWLockOwnerTable.RequiredSize(0));
    }

    [Fact]
    public void A_corrupt_entry_is_reported_not_trusted()
    {
        ref byte phase = ref _seg.Region.Ref<byte>( // slot 5, entry 7: the phase byte of its tag
            _seg.OwnersOffset + LWLockOwnerTableHeader.Size + 5 * LWLockOwnerRecord.Size + LWLockOwnerRecord.HeldOffset + 7 * HeldLockEntry.Size + 15);
        phase = 9;
        Assert.Throws<ShmemCorruptException>(() => _seg.Inspector().HeldBy(5));
        Assert.Throws<ShmemCorruptException>(() => _seg.Owner(5));
        _seg.Owners.ResetSlot(5);
        Assert.Empty(_seg.Inspector().HeldBy(5));
    }

    private static void Corrupt(ShmemRegion region, int offset, Action check)
    {
        ref uint field = ref region.Ref<uint>(offset);
        uint saved = field;
        field ^= 0x5A5A_0001;
        try
        {
            check();
        }
        finally
        {
            field = saved;
        }
    }
}
