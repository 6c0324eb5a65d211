using Postmaster.Shmem;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Segments;

namespace Postmaster.TestChild.Scenarios;

/// <summary>
/// What every lock scenario needs: the test's segment attached (seg=NAME), its tranche table (tranches=OFFSET) and
/// owner table (owners=OFFSET) attached, and a <see cref="LockOwner"/> for slot=N. Dispose is the normal exit path:
/// it releases every lock still held (<see cref="LockOwner.Dispose"/>) and detaches.
/// </summary>
internal sealed class LockChildContext : IDisposable
{
    private readonly MappedSegment _segment;

    private LockChildContext(MappedSegment segment, LWLockTrancheTable tranches, LockOwner owner)
    {
        _segment = segment;
        Tranches = tranches;
        Owner = owner;
        Segment = LWLockSegment.Main(segment.Region);
    }

    public LWLockSegment Segment { get; }

    public LWLockTrancheTable Tranches { get; }

    public LockOwner Owner { get; }

    public ShmemRegion Region => _segment.Region;

    public static LockChildContext Attach(ScenarioArgs args)
    {
        string name = args.String("seg");
        var segment = MappedSegment.AttachPosix(name) ?? throw new InvalidOperationException($"segment \"{name}\" does not exist");
        try
        {
            var main = LWLockSegment.Main(segment.Region);
            long tranchesOffset = args.Long("tranches");
            long ownersOffset = args.Long("owners");
            var tranches = LWLockTrancheTable.Attach(segment.Region.Slice(tranchesOffset, segment.Size - tranchesOffset), main);
            var owners = LWLockOwnerTable.Attach(segment.Region.Slice(ownersOffset, segment.Size - ownersOffset));
            return new LockChildContext(segment, tranches, owners.CreateOwner(args.Int("slot"), tranches));
        }
        catch
        {
            segment.Dispose();
            throw;
        }
    }

    /// <summary>The lock at the offset given as <paramref name="key"/>=OFFSET.</summary>
    public LWLockHandle Lock(ScenarioArgs args, string key = "lock") => Segment.Lock(args.Long(key));

    public void Dispose()
    {
        Owner.Dispose();
        _segment.Dispose();
    }
}
