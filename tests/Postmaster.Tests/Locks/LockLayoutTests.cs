using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Locks;
using Xunit;

namespace Postmaster.Tests.Locks;

/// <summary>Pins every shared-memory layout of the lock subsystem (C# has no static_assert). A failure here means
/// an ABI change: bump the owning structure's layout version and update these numbers deliberately.</summary>
public sealed class LockLayoutTests
{
    [Fact]
    public void LWLock_is_one_cache_line_with_the_futex_word_first()
    {
        Assert.Equal(64, Unsafe.SizeOf<LWLock>());
        Assert.Equal(0, Offset<LWLock>(nameof(LWLock.State)));
        Assert.Equal(4, Offset<LWLock>(nameof(LWLock.Magic)));
        Assert.Equal(8, Offset<LWLock>(nameof(LWLock.TrancheId)));
        Assert.Equal(16, Offset<LWLock>(nameof(LWLock.ExclusiveOwnerPid)));
        Assert.Equal(20, Offset<LWLock>(nameof(LWLock.ExclusiveOwnerSlot)));
        Assert.Equal(16, Offset<LWLock>(nameof(LWLock.ExclusiveOwner)));

        var l = new LWLock { ExclusiveOwner = LWLock.MakeExclusiveOwner(pid: 4242, slot: 7) };
        Assert.Equal((4242, 7), (l.ExclusiveOwnerPid, l.ExclusiveOwnerSlot));
        l.ExclusiveOwner = LWLock.NoExclusiveOwner;
        Assert.Equal((0, LockOwner.NoSlot), (l.ExclusiveOwnerPid, l.ExclusiveOwnerSlot));
    }

    [Fact]
    public void State_word_bits_do_not_overlap()
    {
        int[] fields = [LWLockOps.SharedMask, LWLockOps.ExclusiveBit, LWLockOps.HasWaitersBit, LWLockOps.ExclusiveWaitersMask];
        Assert.Equal(-1, fields.Aggregate(0, (all, f) => all | f));
        for (int i = 0; i < fields.Length; i++)
            for (int j = i + 1; j < fields.Length; j++)
                Assert.Equal(0, fields[i] & fields[j]);
        Assert.Equal(1023, LWLockOps.MaxRegisteredExclusiveWaiters);
    }

    [Fact]
    public void Owner_record_has_a_header_line_and_200_entries_of_16_bytes()
    {
        Assert.Equal(16, Unsafe.SizeOf<HeldLockEntry>());
        Assert.Equal(0, Offset<HeldLockEntry>(nameof(HeldLockEntry.Offset)));
        Assert.Equal(8, Offset<HeldLockEntry>(nameof(HeldLockEntry.SegmentId)));
        Assert.Equal(12, Offset<HeldLockEntry>(nameof(HeldLockEntry.TrancheId)));
        Assert.Equal(14, Offset<HeldLockEntry>(nameof(HeldLockEntry.Mode)));
        Assert.Equal(15, Offset<HeldLockEntry>(nameof(HeldLockEntry.Phase)));
        Assert.Equal(8, Offset<HeldLockEntry>(nameof(HeldLockEntry.Tag)));

        var e = new HeldLockEntry
        {
            Tag = HeldLockEntry.WithModeAndPhase(HeldLockEntry.MakeTag(0xDEADBEEF, 0x1234), LWLockMode.Exclusive, HeldLockPhase.Held),
        };
        Assert.Equal((0xDEADBEEFu, (ushort)0x1234, LWLockMode.Exclusive, HeldLockPhase.Held), (e.SegmentId, e.TrancheId, e.Mode, e.Phase));

        Assert.Equal(3264, Unsafe.SizeOf<LWLockOwnerRecord>());
        Assert.Equal(0, LWLockOwnerRecord.Size % 64);
        var record = default(LWLockOwnerRecord);
        Assert.Equal(0, FieldOffset(ref record, ref record.Pid));
        Assert.Equal(8, FieldOffset(ref record, ref record.CriticalSectionDepth));
        Assert.Equal(64, FieldOffset(ref record, ref record.Held[0]));
        Assert.Equal(64 + 199 * 16, FieldOffset(ref record, ref record.Held[199]));
    }

    [Fact]
    public void Table_headers_start_with_magic_version_and_size()
    {
        Assert.Equal(64, Unsafe.SizeOf<LWLockOwnerTableHeader>());
        Assert.Equal(0, Offset<LWLockOwnerTableHeader>(nameof(LWLockOwnerTableHeader.Magic)));
        Assert.Equal(4, Offset<LWLockOwnerTableHeader>(nameof(LWLockOwnerTableHeader.LayoutVersion)));
        Assert.Equal(8, Offset<LWLockOwnerTableHeader>(nameof(LWLockOwnerTableHeader.TotalSize)));
        Assert.Equal(16, Offset<LWLockOwnerTableHeader>(nameof(LWLockOwnerTableHeader.SlotCount)));
        Assert.Equal(20, Offset<LWLockOwnerTableHeader>(nameof(LWLockOwnerTableHeader.RecordSize)));
        Assert.Equal(24, Offset<LWLockOwnerTableHeader>(nameof(LWLockOwnerTableHeader.MaxHeldLocks)));
        Assert.Equal(64 + 10 * 3264, LWLockOwnerTable.RequiredSize(10));

        Assert.Equal(64, Unsafe.SizeOf<LWLockTrancheTableHeader>());
        Assert.Equal(0, Offset<LWLockTrancheTableHeader>(nameof(LWLockTrancheTableHeader.Magic)));
        Assert.Equal(4, Offset<LWLockTrancheTableHeader>(nameof(LWLockTrancheTableHeader.LayoutVersion)));
        Assert.Equal(8, Offset<LWLockTrancheTableHeader>(nameof(LWLockTrancheTableHeader.TotalSize)));
        Assert.Equal(16, Offset<LWLockTrancheTableHeader>(nameof(LWLockTrancheTableHeader.Capacity)));
        Assert.Equal(20, Offset<LWLockTrancheTableHeader>(nameof(LWLockTrancheTableHeader.Count)));
        Assert.Equal(24, Offset<LWLockTrancheTableHeader>(nameof(LWLockTrancheTableHeader.BuiltinCount)));
        Assert.Equal(28, Offset<LWLockTrancheTableHeader>(nameof(LWLockTrancheTableHeader.NameSlotSize)));
        Assert.Equal(5, LWLockTrancheTable.BuiltinCount);
        Assert.Equal(64 + 5 * 64 + 20 * 64, LWLockTrancheTable.RequiredSize(20));
    }

    [Fact]
    public void Spinlock_condition_variable_and_timespec_have_their_native_sizes()
    {
        Assert.Equal(4, Unsafe.SizeOf<SharedSpinLock>());
        Assert.Equal(8, Unsafe.SizeOf<SharedConditionVariable>());
        Assert.Equal(16, Unsafe.SizeOf<Libc.timespec>());
        Assert.Equal(8, Offset<Libc.timespec>(nameof(Libc.timespec.tv_nsec)));
    }

    private static int Offset<T>(string field) => (int)Marshal.OffsetOf<T>(field);

    private static long FieldOffset<TStruct, TField>(ref TStruct s, ref TField field) =>
        (long)Unsafe.ByteOffset(ref Unsafe.As<TStruct, byte>(ref s), ref Unsafe.As<TField, byte>(ref field));
}
