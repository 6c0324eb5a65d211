using Postmaster.Shmem.Dsm;
using Xunit;

namespace Postmaster.Tests.Dsm;

/// <summary>Multi-process DSM tests run one at a time (two cores; every test starts children).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DsmProcessCollection
{
    public const string Name = "Dsm: multi-process";
}

/// <summary>Segments shared between real processes: TestChild "dsm" children attached to the test's instance.</summary>
[Collection(DsmProcessCollection.Name)]
public sealed class DsmProcessTests
{
    [Theory]
    [MemberData(nameof(DsmTestInstance.Kinds), MemberType = typeof(DsmTestInstance))]
    public void A_child_attaches_by_handle_reads_what_the_parent_wrote_and_writes_back(DsmKind kind, long mainRegion)
    {
        using var pm = new DsmTestInstance("proc-rw", (DsmType)kind, mainRegion: mainRegion);
        var a = pm.Session(0);
        using var seg = a.Create(256 * 1024)!;
        Assert.Equal(mainRegion > 0, seg.Handle.IsMainRegion);
        seg.Region.Span(0, 128 * 1024).Fill(7);
        using var child = pm.StartChild(3);
        child.WriteLine($"attach {seg.Handle}");
        Assert.Equal($"attached {seg.Handle} {256 * 1024}", child.WaitForLine("attached"));
        child.WriteLine($"check {seg.Handle} 7 0 {128 * 1024}");
        Assert.Equal($"ok {seg.Handle}", child.WaitForLine("ok"));
        child.WriteLine($"fill {seg.Handle} 9 {128 * 1024} {128 * 1024}");
        child.WaitForLine("filled");
        Assert.Equal(-1, seg.Region.Span(128 * 1024, 128 * 1024).IndexOfAnyExcept((byte)9));
        Assert.Equal(3, pm.Row(seg.Handle)!.ReferenceCount);
        Assert.Contains(pm.Row(seg.Handle)!.AttachedBy, x => x.Slot == 3 && x.Pid == child.Pid && x.Attached);
        child.WriteLine($"detach {seg.Handle}");
        child.WaitForLine("detached");
        Assert.Equal(2, pm.Row(seg.Handle)!.ReferenceCount);
        child.WriteLine("exit");
        child.WaitForLine("bye");
        Assert.Equal(0, child.WaitForExit());
    }

    [Theory]
    [InlineData(DsmKind.Posix)]
    [InlineData(DsmKind.SysV)]
    [InlineData(DsmKind.Mmap)]
    public void Children_create_attach_write_read_and_detach_and_the_last_one_out_destroys(DsmKind kind)
    {
        using var pm = new DsmTestInstance("proc-many", (DsmType)kind);
        using var creator = pm.StartChild(1);
        using var reader1 = pm.StartChild(2);
        using var reader2 = pm.StartChild(3);
        const int Part = 64 * 1024;
        creator.WriteLine($"create {3 * Part}");
        var handle = creator.WaitForLine("created").Split(' ')[1];
        creator.WriteLine($"fill {handle} 1 0 {Part}");
        creator.WaitForLine("filled");
        var readers = new[] { reader1, reader2 };
        for (int i = 0; i < readers.Length; i++)
        {
            readers[i].WriteLine($"attach {handle}");
            readers[i].WaitForLine("attached");
            readers[i].WriteLine($"fill {handle} {i + 2} {(i + 1) * Part} {Part}");
        }
        foreach (var r in readers)
            r.WaitForLine("filled");
        for (int i = 0; i < 3; i++)
        {
            var checker = i == 0 ? creator : readers[i - 1];
            checker.WriteLine($"check {handle} {(i + 1) % 3 + 1} {((i + 1) % 3) * Part} {Part}");
            Assert.StartsWith("ok", checker.WaitForLine("ok"));
        }
        var h = DsmHandle.Parse(handle);
        Assert.Equal(4, pm.Row(h)!.ReferenceCount);
        creator.WriteLine("exit");                 // the creator leaves first; the segment stays
        Assert.Equal(0, creator.WaitForExit());
        Assert.Equal(3, pm.Row(h)!.ReferenceCount);
        reader1.WriteLine($"detach {handle}");
        reader1.WaitForLine("detached");
        reader2.WriteLine("exit");
        Assert.Equal(0, reader2.WaitForExit());
        Assert.Null(pm.Row(h));
        reader1.WriteLine($"attach {handle}");
        Assert.Equal($"gone {handle}", reader1.WaitForLine("gone"));
        Assert.Single(pm.Tagged()); // only the control segment is left
    }

    [Fact]
    public void A_segment_a_child_pinned_outlives_the_child()
    {
        using var pm = new DsmTestInstance("proc-pin", DsmType.Posix);
        DsmHandle h;
        using (var child = pm.StartChild(4))
        {
            child.WriteLine("create 8192");
            h = DsmHandle.Parse(child.WaitForLine("created").Split(' ')[1]);
            child.WriteLine($"fill {h} 42");
            child.WaitForLine("filled");
            child.WriteLine($"pin {h}");
            child.WaitForLine("pinned");
            child.WriteLine("exit");
            Assert.Equal(0, child.WaitForExit());
        }
        var row = pm.Row(h)!;
        Assert.Equal(2, row.ReferenceCount);
        Assert.True(row.Pinned);
        Assert.Equal([new DsmAttachment(4, row.PinnerPid, false, true)], row.AttachedBy);
        using (var next = pm.StartChild(4))       // the slot is reusable: a pin is not an attachment
        {
            Assert.Empty(pm.Row(h)!.AttachedBy);
            next.WriteLine("exit");
            Assert.Equal(0, next.WaitForExit());
        }
        var a = pm.Session(0);
        using (var seg = a.Attach(h)!)
            Assert.Equal(-1, seg.Region.Span(0, 8192).IndexOfAnyExcept((byte)42));
        a.Unpin(h);
        Assert.Null(pm.Row(h));
    }
}
