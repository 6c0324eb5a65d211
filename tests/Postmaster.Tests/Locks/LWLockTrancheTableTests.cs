using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Locks;
using Xunit;

namespace Postmaster.Tests.Locks;

public sealed class LWLockTrancheTableTests : IDisposable
{
    private readonly LockTestSegment _seg = new("tranche");

    public void Dispose() => _seg.Dispose();

    [Fact]
    public void Built_in_locks_are_their_own_named_tranches()
    {
        foreach (var id in Enum.GetValues<BuiltinLWLock>())
        {
            var lwlock = _seg.Tranches.Builtin(id);
            Assert.Equal((int)id, lwlock.TrancheId);
            Assert.Equal(id.ToString(), _seg.Tranches.TrancheName(lwlock.TrancheId));
            Assert.True(lwlock.ReadStatus().IsFree);
        }
        Assert.Equal(["ShmemIndex", "DsmControl", "DsmRegistry", "BackendSlots", "TrancheTable"],
            _seg.Tranches.Names().Take(LWLockTrancheTable.BuiltinCount).Select(n => n.Value));
        Assert.Null(_seg.Tranches.TrancheName(LockTestSegment.TrancheCapacity));
    }

    [Fact]
    public void Registering_a_name_is_idempotent_and_visible_to_other_attachments()
    {
        using var owner = _seg.Owner(0);
        int id = _seg.Tranches.Register(owner, "BufferMapping");
        Assert.True(id >= LWLockTrancheTable.BuiltinCount);
        Assert.Equal(id, _seg.Tranches.Register(owner, "BufferMapping"));
        Assert.Equal(0, owner.HeldCount); // the table lock was released

        var other = LWLockTrancheTable.Attach(TableRegion(), _seg.Segment);
        Assert.Equal(id, other.Find("BufferMapping"));
        Assert.Equal("BufferMapping", other.TrancheName(id));
        Assert.Null(other.Find("NoSuchTranche"));
        Assert.Equal(_seg.Tranches.Count, other.Count);
    }

    [Fact]
    public void Names_longer_than_63_bytes_are_rejected_naming_the_limit()
    {
        using var owner = _seg.Owner(0);
        string longest = new('n', LWLockTrancheTable.MaxNameBytes);
        Assert.Equal(longest, _seg.Tranches.TrancheName(_seg.Tranches.Register(owner, longest)));

        var e = Assert.Throws<ArgumentException>(() => _seg.Tranches.Register(owner, longest + "n"));
        Assert.Contains("the limit is 63 bytes", e.Message);
        // Multi-byte UTF-8 counts in bytes: 32 × "é" is 64 bytes.
        Assert.Throws<ArgumentException>(() => _seg.Tranches.Register(owner, new string('é', 32)));
        Assert.Throws<ArgumentException>(() => _seg.Tranches.Register(owner, ""));
        Assert.Throws<ArgumentException>(() => _seg.Tranches.Register(owner, "a\0b"));
    }

    [Fact]
    public void A_full_table_refuses_new_names_but_still_finds_old_ones()
    {
        using var owner = _seg.Owner(0);
        while (_seg.Tranches.Count < _seg.Tranches.Capacity)
            _seg.Tranches.Register(owner, $"Tranche{_seg.Tranches.Count}");
        var e = Assert.Throws<ShmemException>(() => _seg.Tranches.Register(owner, "OneTooMany"));
        Assert.Contains("too many LWLock tranches", e.Message);
        Assert.Equal(0, owner.HeldCount);
        Assert.Equal(_seg.TrancheId, _seg.Tranches.Register(owner, LockTestSegment.TestTranche));
    }

    [Fact]
    public void Attach_rejects_a_corrupt_header()
    {
        var region = TableRegion();
        Assert.True(LWLockTrancheTable.IsSane(region));
        ref uint magic = ref region.Ref<uint>(0);
        magic = 0;
        Assert.False(LWLockTrancheTable.IsSane(region));
        Assert.Throws<ShmemCorruptException>(() => LWLockTrancheTable.Attach(region, _seg.Segment));
        magic = LWLockTrancheTableHeader.ExpectedMagic;

        ref int count = ref region.Ref<int>(20); // Count beyond Capacity
        int saved = count;
        count = LockTestSegment.TrancheCapacity + 1;
        var e = Assert.Throws<ShmemCorruptException>(() => LWLockTrancheTable.Attach(region, _seg.Segment));
        Assert.Contains("Name count", e.Detail);
        count = saved;
        Assert.True(LWLockTrancheTable.IsSane(region));
    }

    private Shmem.ShmemRegion TableRegion() =>
        _seg.Region.Slice(_seg.TranchesOffset, _seg.OwnersOffset - _seg.TranchesOffset);
}
