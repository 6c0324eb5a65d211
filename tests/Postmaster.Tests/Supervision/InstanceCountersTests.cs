using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Tests.Dsm;
using Xunit;

namespace Postmaster.Tests.Supervision;

/// <summary>The instance counters in the main segment (crash recovery, connections, backend start latency): pinned
/// layout, a round trip through a real main segment, and readers that never trust a table they cannot validate.</summary>
public sealed class InstanceCountersTests : IDisposable
{
    private readonly DsmTestInstance _pm = new("counters", DsmType.Posix);

    public void Dispose() => _pm.Dispose();

    [Fact]
    public void The_layout_is_pinned()
    {
        Assert.Equal(InstanceCounters.Bytes, Unsafe.SizeOf<InstanceCounters.Layout>());
        Assert.Equal(0, Offset(nameof(InstanceCounters.Layout.Magic)));
        Assert.Equal(4, Offset(nameof(InstanceCounters.Layout.LayoutVersion)));
        Assert.Equal(8, Offset(nameof(InstanceCounters.Layout.Size)));
        Assert.Equal(16, Offset(nameof(InstanceCounters.Layout.FullRestarts)));
        Assert.Equal(24, Offset(nameof(InstanceCounters.Layout.Reconciles)));
        Assert.Equal(32, Offset(nameof(InstanceCounters.Layout.ConnectionsAccepted)));
        Assert.Equal(40, Offset(nameof(InstanceCounters.Layout.ConnectionsRejected)));
        Assert.Equal(48, Offset(nameof(InstanceCounters.Layout.BackendStarts)));
        Assert.Equal(56, Offset(nameof(InstanceCounters.Layout.BackendStartNanos)));
        Assert.Equal(64, Offset(nameof(InstanceCounters.Layout.Buckets)));
        Assert.Equal(11, InstanceCounters.StartBucketCount);
        Assert.Equal(168, Offset(nameof(InstanceCounters.Layout.ConnectionsDirect)));
        Assert.Equal(176, Offset(nameof(InstanceCounters.Layout.ConnectionsAccepting)));
        Assert.Equal(184, Offset(nameof(InstanceCounters.Layout.NextSessionId)));
        Assert.Equal(192, Offset(nameof(InstanceCounters.Layout.SpareTarget)));
    }

    [Fact]
    public void Published_values_are_read_back_and_a_damaged_table_reads_as_none()
    {
        var counters = InstanceCounters.Open(_pm.Main.Index, out string? problem);
        Assert.True(counters is not null, problem);
        Assert.Equal(new RecoveryTotals(0, 0), counters.Recovery);
        counters.PublishRecovery(new RecoveryTotals(3, 17));
        counters.RestoreConnections(new ConnectionTotals(40, 2, 31, 100));
        counters.CountAccepted(direct: true);
        counters.CountAccepted(direct: false);
        counters.CountRejected();
        Assert.Equal(101, counters.TakeSessionId());
        counters.PublishAccepting(3);
        Assert.Equal(2, counters.LeaveAccepting());
        Assert.Equal(new RecoveryTotals(3, 17), InstanceCounters.Require(_pm.Main.Index).Recovery);
        Assert.Equal((42L, 3L), InstanceCounters.Require(_pm.Main.Index).Connections);
        Assert.Equal((32L, 2L), InstanceCounters.Require(_pm.Main.Index).DirectConnections);
        Assert.Equal(new ConnectionTotals(42, 3, 32, 101), counters.SnapshotConnections());
        counters.RestoreConnections(new ConnectionTotals(-5, 1, 1, 7)); // damaged values are clamped
        Assert.Equal(new ConnectionTotals(0, 1, 1, 7), counters.SnapshotConnections());

        _pm.Main.Index.TryFind(InstanceCounters.Name, out var region);
        uint magic = region.Ref<uint>(0);
        region.Ref<uint>(0) = 0xDEAD_BEEF;
        Assert.Null(InstanceCounters.Open(_pm.Main.Index, out problem));
        Assert.Equal("instance counters: wrong magic number 0xDEADBEEF (expected 0x504D4943)", problem);
        Assert.Throws<ShmemCorruptException>(() => InstanceCounters.Require(_pm.Main.Index));
        region.Ref<uint>(0) = magic;
        region.Ref<long>(8) = 100;
        Assert.Null(InstanceCounters.Open(_pm.Main.Index, out problem));
        Assert.Contains("layout version 2, size 100", problem);
    }

    [Fact]
    public void Start_latencies_fall_into_cumulative_buckets()
    {
        var counters = InstanceCounters.Require(_pm.Main.Index);
        foreach (long micros in new long[] { 0, 999, 1000, 1001, 30_000, 2_500_000, 9_000_000 })
            counters.RecordBackendStart(micros * 1000);
        counters.RecordBackendStart(-5); // a clock step: counted as 0
        var h = counters.ReadBackendStarts();
        Assert.Equal(8, h.Count);
        Assert.Equal(InstanceCounters.StartBucketCount + 1, h.Cumulative.Length);
        Assert.Equal(4, h.Cumulative[0]); // ≤ 1 ms: 0, 999 µs, 1000 µs, -5 ns
        Assert.Equal(5, h.Cumulative[1]); // ≤ 2.5 ms
        Assert.Equal(5, h.Cumulative[4]); // ≤ 25 ms
        Assert.Equal(6, h.Cumulative[5]); // ≤ 50 ms: 30 ms
        Assert.Equal(7, h.Cumulative[^2]); // ≤ 2.5 s
        Assert.Equal(8, h.Cumulative[^1]);
        Assert.Equal((999L + 1000 + 1001 + 30_000 + 2_500_000 + 9_000_000) * 1000, h.SumNanos);
    }

    private static int Offset(string field) => (int)Marshal.OffsetOf<InstanceCounters.Layout>(field);
}
