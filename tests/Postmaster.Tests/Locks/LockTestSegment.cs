using Postmaster.Shmem;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Segments;
using Postmaster.Tests.Support;

namespace Postmaster.Tests.Locks;

/// <summary>
/// A POSIX segment laid out the way the main segment will hold the lock structures, for one test:
/// [tranche table][owner table][locks, 64 bytes each][data]. Every lock is initialised in the "TestLocks" tranche.
/// Dispose destroys the segment (also when the test failed). Child processes get the layout through
/// <see cref="ChildArgs"/>.
/// </summary>
internal sealed class LockTestSegment : IDisposable
{
    public const int TrancheCapacity = 16;
    public const int DataSize = 4096;
    public const string TestTranche = "TestLocks";

    private readonly MappedSegment _segment;

    public LockTestSegment(string label, int slots = 16, int locks = 8)
    {
        Name = IpcNames.Posix(label);
        TranchesOffset = 0;
        OwnersOffset = TranchesOffset + LWLockTrancheTable.RequiredSize(TrancheCapacity);
        LocksOffset = OwnersOffset + LWLockOwnerTable.RequiredSize(slots);
        DataOffset = LocksOffset + LWLockSegment.RequiredSize(locks);
        LockCount = locks;
        _segment = MappedSegment.CreatePosix(Name, DataOffset + DataSize)
                   ?? throw new InvalidOperationException($"segment {Name} exists already");
        try
        {
            Segment = LWLockSegment.Main(_segment.Region);
            Tranches = LWLockTrancheTable.Initialize(Region.Slice(TranchesOffset, OwnersOffset - TranchesOffset), Segment, TrancheCapacity);
            Owners = LWLockOwnerTable.Initialize(Region.Slice(OwnersOffset, LocksOffset - OwnersOffset), slots);
            using (var setup = Owners.CreateOwner(slots - 1, Tranches))
                TrancheId = Tranches.Register(setup, TestTranche);
            Segment.InitializeLocks(LocksOffset, locks, TrancheId);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Name { get; }

    public ShmemRegion Region => _segment.Region;

    public LWLockSegment Segment { get; }

    public LWLockTrancheTable Tranches { get; }

    public LWLockOwnerTable Owners { get; }

    public int TrancheId { get; }

    public int LockCount { get; }

    public long TranchesOffset { get; }

    public long OwnersOffset { get; }

    public long LocksOffset { get; }

    public long DataOffset { get; }

    public long LockOffset(int i) => LocksOffset + (long)i * LWLockSegment.LockSize;

    public LWLockHandle Lock(int i) => Segment.Lock(LockOffset(i));

    /// <summary>A 64-bit field in the data area.</summary>
    public ref long Data(int index) => ref Region.Ref<long>(DataOffset + index * sizeof(long));

    /// <summary>An owner for <paramref name="slot"/>; create it on the thread that uses it (owners are
    /// single-threaded).</summary>
    public LockOwner Owner(int slot) => Owners.CreateOwner(slot, Tranches);

    public LWLockInspector Inspector() => new(Owners, Tranches);

    /// <summary>Arguments a TestChild lock scenario needs to attach as <paramref name="slot"/>, plus extras.</summary>
    public string[] ChildArgs(int slot, params string[] extra) =>
        [$"seg={Name}", $"tranches={TranchesOffset}", $"owners={OwnersOffset}", $"slot={slot}", .. extra];

    public void Dispose()
    {
        _segment.Destroy();
        _segment.Dispose();
    }
}
