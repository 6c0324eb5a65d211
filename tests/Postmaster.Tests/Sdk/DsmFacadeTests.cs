using Postmaster.Shmem.Dsm;
using Postmaster.Tests.Dsm;
using Postmaster.Workers;
using Xunit;
using DsmSegment = Postmaster.Workers.DsmSegment;
using DsmHandle = Postmaster.Workers.DsmHandle;
using DsmRegistry = Postmaster.Workers.DsmRegistry;
using EngineRegistry = Postmaster.Shmem.Registry.DsmRegistry;

namespace Postmaster.Tests.Sdk;

/// <summary>The SDK's dynamic shared memory and registry facades over the engine's session and registry: one object per
/// attached segment, whichever path led to it, and on-detach callbacks that see that object.</summary>
public sealed class DsmFacadeTests
{
    [Fact]
    public void Every_path_to_an_attached_segment_gives_the_same_object_and_its_detach_callbacks_see_it()
    {
        using var pm = new DsmTestInstance("sdk-dsm", DsmType.Posix);
        var session = pm.Session(0);
        var dsm = new DynamicSharedMemory(session);
        var registry = new DsmRegistry(new EngineRegistry(pm.Instance, session.Owner, session));
        var seg = dsm.Create(4096)!;
        Assert.Same(seg, dsm.FindMapping(seg.Handle));
        Assert.Equal(1, dsm.AttachedCount);
        seg.Region.Ref<long>(0) = 42;

        var other = new DynamicSharedMemory(pm.Session(1));
        var attached = other.Attach(DsmHandle.Parse(seg.Handle.ToString()))!;
        Assert.Equal(42, attached.Region.Ref<long>(0));
        Assert.Equal(seg.Handle, attached.Handle);
        Assert.NotSame(seg, attached); // another session: another attachment

        var named = registry.GetNamedSegment("sdk facade", 64, r => r.Ref<long>(0) = 7, out bool found);
        Assert.False(found);
        Assert.Equal(7, named.Region.Ref<long>(0));
        Assert.Same(named.Segment, dsm.FindMapping(named.Handle));
        Assert.Contains(registry.List(), e => e.Name == "sdk facade" && e.State == DsmRegistryEntryState.Ready && e.Handle == named.Handle);

        var calls = new List<string>();
        Action<DsmSegment> first = s => calls.Add($"first, same object: {ReferenceEquals(s, attached)}");
        Action<DsmSegment> second = _ => calls.Add("second");
        attached.OnDetach(first);
        attached.OnDetach(second);
        Assert.True(attached.CancelOnDetach(second));
        Assert.False(attached.CancelOnDetach(second));
        other.Detach(attached);
        Assert.Equal(["first, same object: True"], calls);
        Assert.False(attached.IsAttached);
        Assert.Throws<InvalidOperationException>(() => attached.OnDetach(first));
        Assert.False(attached.CancelOnDetach(first)); // it has run

        Assert.True(registry.Release("sdk facade"));
        seg.Dispose();
        Assert.Equal(0, dsm.AttachedCount);
        Assert.Null(other.Attach(seg.Handle)); // the last detach destroyed it
    }

    [Fact]
    public void A_handle_round_trips_through_text_and_garbage_is_no_handle()
    {
        var h = new DsmHandle(123456);
        Assert.Equal(h, DsmHandle.Parse(h.ToString()));
        Assert.True(DsmHandle.TryParse("123456", out var parsed) && parsed == h);
        Assert.False(DsmHandle.TryParse("12a", out var bad));
        Assert.Equal(DsmHandle.Invalid, bad);
        Assert.False(DsmHandle.Invalid.IsValid);
        Assert.Throws<FormatException>(() => DsmHandle.Parse("-1"));
    }
}
