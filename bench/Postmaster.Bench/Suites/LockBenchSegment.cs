using Postmaster.Shmem;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Segments;

namespace Postmaster.Bench.Suites;

/// <summary>
/// The shared segment the locks suite measures on, laid out like the main segment will hold the lock structures:
/// [tranche table][owner table][locks][words]. The parent creates it (a unique /dev/shm name) and destroys it on
/// Dispose; the child process attaches by name. Every hot word has its own cache line.
/// </summary>
internal sealed class LockBenchSegment : IDisposable
{
    public const int Slots = 6;
    public const int Locks = 8;
    public const int ParentSlot = 0;
    public const int ChildSlot = 1;
    public const int SecondParentSlot = 2;
    public const int SecondChildSlot = 3;

    private const int TrancheCapacity = 8;
    private const int WordStride = 64; // one cache line per word
    private const int Words = 10;

    private readonly MappedSegment _segment;
    private readonly bool _creator;

    private LockBenchSegment(MappedSegment segment, bool creator)
    {
        _segment = segment;
        _creator = creator;
        Segment = LWLockSegment.Main(segment.Region);
    }

    /// <summary>Word indexes in the data area.</summary>
    public enum Word
    {
        Raw = 0,       // the baseline's lock word
        Turn = 1,      // raw futex ping-pong: 1 = child's turn, 0 = parent's, 2 = stop
        Generation = 2, // throughput: round the parent has started
        Stop = 3,      // throughput: round the parent has stopped
        ChildDone = 4, // throughput: round the child has reported
        ChildOps = 5,  // throughput: the child's operation count (64-bit)
        Thread0 = 6,   // threads: thread 0's raw lock word
        Thread1 = 7,   // threads: thread 1's raw lock word
    }

    public string Name => _segment.Name;

    public LWLockSegment Segment { get; }

    public LWLockTrancheTable Tranches { get; private set; } = null!;

    public LWLockOwnerTable Owners { get; private set; } = null!;

    public ShmemRegion Region => _segment.Region;

    private static long OwnersOffset => LWLockTrancheTable.RequiredSize(TrancheCapacity);

    private static long LocksOffset => OwnersOffset + LWLockOwnerTable.RequiredSize(Slots);

    private static long WordsOffset => LocksOffset + LWLockSegment.RequiredSize(Locks);

    private static long TotalSize => WordsOffset + Words * WordStride;

    public static LockBenchSegment Create()
    {
        string name = $"/pmbench.{Environment.ProcessId}.locks";
        var segment = MappedSegment.CreatePosix(name, TotalSize) ?? throw new InvalidOperationException($"segment {name} exists");
        var seg = new LockBenchSegment(segment, creator: true);
        try
        {
            seg.Tranches = LWLockTrancheTable.Initialize(seg.Region.Slice(0, OwnersOffset), seg.Segment, TrancheCapacity);
            seg.Owners = LWLockOwnerTable.Initialize(seg.Region.Slice(OwnersOffset, LocksOffset - OwnersOffset), Slots);
            int tranche;
            using (var setup = seg.Owners.CreateOwner(Slots - 1, seg.Tranches))
                tranche = seg.Tranches.Register(setup, "BenchLocks");
            seg.Segment.InitializeLocks(LocksOffset, Locks, tranche);
            return seg;
        }
        catch
        {
            seg.Dispose();
            throw;
        }
    }

    public static LockBenchSegment Attach(string name)
    {
        var segment = MappedSegment.AttachPosix(name) ?? throw new InvalidOperationException($"segment {name} does not exist");
        var seg = new LockBenchSegment(segment, creator: false);
        try
        {
            seg.Tranches = LWLockTrancheTable.Attach(seg.Region.Slice(0, OwnersOffset), seg.Segment);
            seg.Owners = LWLockOwnerTable.Attach(seg.Region.Slice(OwnersOffset, LocksOffset - OwnersOffset));
            return seg;
        }
        catch
        {
            seg.Dispose();
            throw;
        }
    }

    public LWLockHandle Lock(int i) => Segment.Lock(LocksOffset + (long)i * LWLockSegment.LockSize);

    public ref int Int(Word word) => ref Region.Ref<int>(WordsOffset + (int)word * WordStride);

    public ref long Long(Word word) => ref Region.Ref<long>(WordsOffset + (int)word * WordStride);

    public void Dispose()
    {
        if (_creator)
            _segment.Destroy();
        _segment.Dispose();
    }
}
