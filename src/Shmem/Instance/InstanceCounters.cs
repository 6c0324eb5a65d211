using System.Diagnostics;
using System.Runtime.InteropServices;
using Postmaster.Shmem.Layout;

namespace Postmaster.Shmem.Instance;

/// <summary>Crash recovery since the postmaster started: full crash restarts done (shared memory rebuilt) and backend
/// crashes reconciled.</summary>
internal readonly record struct RecoveryTotals(long FullRestarts, long Reconciles);

/// <summary>Connections accepted (of them, by backends themselves) and refused, and the last session id given.</summary>
internal readonly record struct ConnectionTotals(long Accepted, long Rejected, long Direct, long LastSessionId);

/// <summary>Backend start latencies (posix_spawn to attached): counts per bucket of <see cref="InstanceCounters.StartBucketsMicros"/>
/// (cumulative, the last one +Inf, so it equals <see cref="Count"/>) and the sum in nanoseconds.</summary>
internal sealed record StartHistogram(long[] Cumulative, long Count, long SumNanos);

/// <summary>
/// The instance's counters in the main segment ("Instance counters"), for <c>status</c> and the metrics:
/// <list type="bullet">
/// <item>crash recovery totals, written by the postmaster's loop only, after each reconcile and into every rebuilt
/// segment before it says ready again (it keeps them in its own memory);</item>
/// <item>the pool size in effect (<c>backend_pool_size</c>), written by the loop at start and after reloads;</item>
/// <item>connections accepted (atomic adds by the acceptor and by connection backends that accept themselves; of them,
/// those backends accepted) and refused, the last session id (atomic adds by both), the idle accepting backends (a
/// hint, kept by backends and rewritten exactly by the acceptor) and the spare target; the acceptor carries the totals
/// into a rebuilt segment;</item>
/// <item>the backend start latency histogram, added to by every backend with atomic adds when it has attached (a
/// backend killed in the middle leaves at most its own sample out). It starts again at zero in a rebuilt segment, as a
/// Prometheus counter reset.</item>
/// </list>
/// Each value is one aligned word. Validated by every reader: magic, layout version, size.
/// </summary>
internal sealed unsafe class InstanceCounters
{
    public const string Name = "Instance counters";
    public const int Bytes = 256;
    private const uint Magic = 0x504D_4943; // "PMIC"
    private const uint LayoutVersion = 2;
    private const int BucketsOffset = 64;
    private const int PoolTargetOffset = 160;

    /// <summary>The number of finite start-latency buckets; one more (+Inf) follows.</summary>
    public const int StartBucketCount = 11;

    /// <summary>Upper bounds of the start-latency buckets in microseconds (a new array each time: no static state, which
    /// a backend would need the JIT for).</summary>
    public static long[] StartBucketsMicros => [1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000];

    /// <summary>The bucket of a latency: the first whose bound is not below it, else the +Inf one.</summary>
    private static int BucketOf(long micros) => micros switch
    {
        <= 1_000 => 0,
        <= 2_500 => 1,
        <= 5_000 => 2,
        <= 10_000 => 3,
        <= 25_000 => 4,
        <= 50_000 => 5,
        <= 100_000 => 6,
        <= 250_000 => 7,
        <= 500_000 => 8,
        <= 1_000_000 => 9,
        <= 2_500_000 => 10,
        _ => StartBucketCount,
    };

    [StructLayout(LayoutKind.Explicit, Size = Bytes)]
    internal unsafe struct Layout
    {
        [FieldOffset(0)] public uint Magic;
        [FieldOffset(4)] public uint LayoutVersion;
        [FieldOffset(8)] public long Size;
        [FieldOffset(16)] public long FullRestarts;        // postmaster loop
        [FieldOffset(24)] public long Reconciles;          // postmaster loop
        [FieldOffset(32)] public long ConnectionsAccepted; // acceptor thread
        [FieldOffset(40)] public long ConnectionsRejected; // acceptor thread
        [FieldOffset(48)] public long BackendStarts;       // backends, atomic add
        [FieldOffset(56)] public long BackendStartNanos;   // backends, atomic add
        [FieldOffset(BucketsOffset)] public fixed long Buckets[StartBucketCount + 1]; // backends, atomic add
        [FieldOffset(PoolTargetOffset)] public long PoolTarget; // postmaster loop: backend_pool_size in effect
        [FieldOffset(168)] public long ConnectionsDirect;    // backends, atomic add: accepted by a backend itself
        [FieldOffset(176)] public long ConnectionsAccepting; // backends (atomic add) and acceptor: idle accepting backends (a hint)
        [FieldOffset(184)] public long NextSessionId;        // acceptor and backends, atomic add: the last session id taken
        [FieldOffset(192)] public long SpareTarget;          // acceptor: spare_connection_backends in effect
    }

    private readonly ShmemRegion _region;

    private InstanceCounters(ShmemRegion region) => _region = region;

    /// <summary>The plan's initialisation (<see cref="InstanceLayout.Plan"/>): zeroed counters, published header. (No
    /// delegate is kept in a static here: a backend reaches this class, and must not need the JIT for it.)</summary>
    public static void Initialize(ShmemRegion region)
    {
        ref var t = ref region.Ref<Layout>(0);
        t.Size = Bytes;
        t.LayoutVersion = LayoutVersion;
        Volatile.Write(ref t.Magic, Magic);
    }

    /// <summary>The table behind <paramref name="index"/>, or null with <paramref name="problem"/> when it is missing or
    /// invalid (an older server, or damage).</summary>
    public static InstanceCounters? Open(ShmemIndex index, out string? problem)
    {
        problem = Problem(index, out var region);
        return problem is null ? new InstanceCounters(region) : null;
    }

    /// <summary>The table, or throws ShmemCorruptException (for the postmaster, which created it).</summary>
    public static InstanceCounters Require(ShmemIndex index) =>
        Open(index, out string? problem) ?? throw new Errors.ShmemCorruptException(problem!);

    private ref Layout Header => ref _region.Ref<Layout>(0);

    // A fixed buffer, not ShmemRegion.Ref<long>: that instantiation is not precompiled, and a backend reaches this.
    private unsafe ref long Bucket(int i) => ref Header.Buckets[i];

    public void PublishRecovery(RecoveryTotals totals)
    {
        Volatile.Write(ref Header.FullRestarts, totals.FullRestarts);
        Volatile.Write(ref Header.Reconciles, totals.Reconciles);
    }

    public RecoveryTotals Recovery => new(Volatile.Read(ref Header.FullRestarts), Volatile.Read(ref Header.Reconciles));

    /// <summary>A connection accepted: by the acceptor (<paramref name="direct"/> false) or by a connection backend
    /// itself. Atomic: both write.</summary>
    public void CountAccepted(bool direct)
    {
        Interlocked.Increment(ref Header.ConnectionsAccepted);
        if (direct)
            Interlocked.Increment(ref Header.ConnectionsDirect);
    }

    /// <summary>Acceptor: a connection refused.</summary>
    public void CountRejected() => Interlocked.Increment(ref Header.ConnectionsRejected);

    /// <summary>A new session id (instance-wide, increasing; the first is 1).</summary>
    public long TakeSessionId() => Interlocked.Increment(ref Header.NextSessionId);

    /// <summary>Backend: it took a connection with its ticket; the idle accepting backends left (a hint: the acceptor
    /// rewrites the exact number whenever it runs).</summary>
    public long LeaveAccepting() => Interlocked.Decrement(ref Header.ConnectionsAccepting);

    /// <summary>Backend: its session ended, it accepts again.</summary>
    public void ReturnAccepting() => Interlocked.Increment(ref Header.ConnectionsAccepting);

    /// <summary>Acceptor: the exact number of idle accepting backends, as it counted them.</summary>
    public void PublishAccepting(int backends) => Volatile.Write(ref Header.ConnectionsAccepting, backends);

    /// <summary>Acceptor: spare_connection_backends in effect (a backend that leaves fewer accepting ones than this
    /// wakes the acceptor, which then asks for more).</summary>
    public void PublishSpareTarget(int spare) => Volatile.Write(ref Header.SpareTarget, spare);

    public long SpareTarget => Volatile.Read(ref Header.SpareTarget);

    /// <summary>Connections accepted by a connection backend itself (with its ticket), of <see cref="Connections"/>'s
    /// accepted; and the idle backends accepting now.</summary>
    public (long Direct, long Accepting) DirectConnections =>
        (Volatile.Read(ref Header.ConnectionsDirect), Volatile.Read(ref Header.ConnectionsAccepting));

    /// <summary>The connection totals and the last session id, to carry into a rebuilt segment.</summary>
    public ConnectionTotals SnapshotConnections() => new(Volatile.Read(ref Header.ConnectionsAccepted),
        Volatile.Read(ref Header.ConnectionsRejected), Volatile.Read(ref Header.ConnectionsDirect), Volatile.Read(ref Header.NextSessionId));

    /// <summary>Acceptor: a rebuilt segment gets the totals of the one before (values a damaged segment held are
    /// clamped to 0, so they are at worst wrong, never negative).</summary>
    public void RestoreConnections(ConnectionTotals t)
    {
        Volatile.Write(ref Header.ConnectionsAccepted, Math.Max(0, t.Accepted));
        Volatile.Write(ref Header.ConnectionsRejected, Math.Max(0, t.Rejected));
        Volatile.Write(ref Header.ConnectionsDirect, Math.Max(0, t.Direct));
        Volatile.Write(ref Header.NextSessionId, Math.Max(0, t.LastSessionId));
    }

    /// <summary>Postmaster: the pool size in effect (backend_pool_size), at start and after each reload.</summary>
    public void PublishPoolTarget(int size) => Volatile.Write(ref Header.PoolTarget, size);

    public long PoolTarget => Volatile.Read(ref Header.PoolTarget);

    public (long Accepted, long Rejected) Connections =>
        (Volatile.Read(ref Header.ConnectionsAccepted), Volatile.Read(ref Header.ConnectionsRejected));

    /// <summary>Backend: one start that took <paramref name="nanos"/> from its spawn to attached.</summary>
    public void RecordBackendStart(long nanos)
    {
        nanos = Math.Max(0, nanos);
        Interlocked.Increment(ref Bucket(BucketOf(nanos / 1000)));
        Interlocked.Add(ref Header.BackendStartNanos, nanos);
        Interlocked.Increment(ref Header.BackendStarts);
    }

    /// <summary>The histogram as Prometheus wants it (cumulative). Read word by word while backends add: the count is
    /// read last and raised to the +Inf bucket if that is higher, so the series stays consistent.</summary>
    public StartHistogram ReadBackendStarts()
    {
        var cumulative = new long[StartBucketCount + 1];
        long running = 0;
        for (int i = 0; i < cumulative.Length; i++)
        {
            running += Volatile.Read(ref Bucket(i));
            cumulative[i] = running;
        }
        long sum = Volatile.Read(ref Header.BackendStartNanos);
        long count = Math.Max(running, Volatile.Read(ref Header.BackendStarts));
        cumulative[^1] = count;
        return new StartHistogram(cumulative, count, sum);
    }

    /// <summary>Nanoseconds from a <see cref="Stopwatch.GetTimestamp"/> value taken in another process (CLOCK_MONOTONIC
    /// is one clock for the whole machine) until now.</summary>
    public static long NanosSince(long timestamp) =>
        (long)((Stopwatch.GetTimestamp() - timestamp) * (1_000_000_000.0 / Stopwatch.Frequency));

    private static string? Problem(ShmemIndex index, out ShmemRegion region)
    {
        if (!index.TryFind(Name, out region))
            return $"{ShmemIndex.StructureName}: \"{Name}\" is missing";
        if (region.Size < Bytes)
            return $"instance counters: region of {region.Size} bytes is too small ({Bytes} bytes)";
        var t = region.Ref<Layout>(0);
        if (t.Magic != Magic)
            return $"instance counters: wrong magic number 0x{t.Magic:X8} (expected 0x{Magic:X8})";
        if (t.LayoutVersion != LayoutVersion || t.Size != Bytes)
            return $"instance counters: layout version {t.LayoutVersion}, size {t.Size} (expected {LayoutVersion}, {Bytes})";
        return null;
    }
}
