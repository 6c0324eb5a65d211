using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Supervision;
using Postmaster.Tests.Dsm;
using Xunit;

namespace Postmaster.Tests.Supervision;

/// <summary>The crash-recovery totals the postmaster publishes for <c>status</c>: pinned layout, a round trip through a
/// real main segment, and readers that never trust a table they cannot validate.</summary>
public sealed class RecoveryCountersTableTests : IDisposable
{
    private readonly DsmTestInstance _pm = new("counters", DsmType.Posix);

    public void Dispose() => _pm.Dispose();

    [Fact]
    public void The_layout_is_pinned()
    {
        Assert.Equal(64, Unsafe.SizeOf<RecoveryCountersTable.Layout>());
        Assert.Equal(RecoveryCountersTable.Bytes, Unsafe.SizeOf<RecoveryCountersTable.Layout>());
        Assert.Equal(0, Offset(nameof(RecoveryCountersTable.Layout.Magic)));
        Assert.Equal(4, Offset(nameof(RecoveryCountersTable.Layout.LayoutVersion)));
        Assert.Equal(8, Offset(nameof(RecoveryCountersTable.Layout.Size)));
        Assert.Equal(16, Offset(nameof(RecoveryCountersTable.Layout.FullRestarts)));
        Assert.Equal(24, Offset(nameof(RecoveryCountersTable.Layout.Reconciles)));
    }

    [Fact]
    public void Published_totals_are_read_back_and_a_damaged_or_missing_table_reads_as_none()
    {
        var index = _pm.Main.Index;
        Assert.Null(RecoveryCountersTable.Read(index)); // a segment without the table (an older server)
        Assert.Throws<ShmemCorruptException>(() => RecoveryCountersTable.Publish(index, new RecoveryTotals(1, 2)));

        var region = index.InitStruct(RecoveryCountersTable.Name, RecoveryCountersTable.Bytes, out bool found);
        Assert.False(found);
        RecoveryCountersTable.Request.Initialize!(region, _pm.Main.Region);
        Assert.Equal(new RecoveryTotals(0, 0), RecoveryCountersTable.Read(index));
        RecoveryCountersTable.Publish(index, new RecoveryTotals(3, 17));
        Assert.Equal(new RecoveryTotals(3, 17), RecoveryCountersTable.Read(index));

        region.Ref<uint>(0) = 0xDEAD_BEEF;
        Assert.Null(RecoveryCountersTable.Read(index));
        var e = Assert.Throws<ShmemCorruptException>(() => RecoveryCountersTable.Publish(index, new RecoveryTotals(4, 17)));
        Assert.Equal("recovery counters: wrong magic number 0xDEADBEEF (expected 0x504D5243)", e.Message);
    }

    private static int Offset(string field) => (int)Marshal.OffsetOf<RecoveryCountersTable.Layout>(field);
}
