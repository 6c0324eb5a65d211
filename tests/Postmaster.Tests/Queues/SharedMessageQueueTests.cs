using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Queues;
using Postmaster.Testing;
using Postmaster.Tests.Dsm;
using Postmaster.Tests.Locks;
using Postmaster.Workers;
using Xunit;
using DsmHandle = Postmaster.Workers.DsmHandle;

namespace Postmaster.Tests.Queues;

/// <summary>The SDK facade over the engine in one process: where a queue lives (its own segment, a slice of one, a
/// plain region), who owns the mapping, and detaching with the segment (the exit path's way).</summary>
public sealed class SharedMessageQueueTests
{
    [Fact]
    public void A_queue_in_its_own_segment_is_attached_by_handle_owns_only_a_mapping_it_made_and_the_last_dispose_destroys_it()
    {
        using var pm = new DsmTestInstance("sdk-mq-own", DsmType.Posix);
        var dsmA = new DynamicSharedMemory(pm.Session(0));
        var dsmB = new DynamicSharedMemory(pm.Session(1));
        var created = SharedMessageQueue.Create(dsmA, 1000);
        Assert.Equal(1000, created.RingSize);
        Assert.Equal(SharedMessageQueue.RequiredSize(1000), created.Segment!.Size);
        var attached = SharedMessageQueue.Attach(dsmB, DsmHandle.Parse(created.Handle.ToString()))!;
        Assert.Equal(created.Handle, attached.Handle);
        created.SetReceiver();
        attached.SetSender();
        Assert.Equal(SharedMessageQueueResult.Success, attached.Send("hello"u8));
        Assert.Equal(SharedMessageQueueResult.Success, created.TryReceive(out var message));
        Assert.Equal("hello"u8.ToArray(), message);
        Assert.Equal(3, pm.Row(created.Handle.Inner)!.ReferenceCount);
        var sameProcess = SharedMessageQueue.Attach(dsmA, created.Handle)!; // mapped here already: not its own mapping
        Assert.Same(created.Segment, sameProcess.Segment);
        sameProcess.Dispose(); // no role taken: only this object is detached
        Assert.True(created.Segment.IsAttached);
        Assert.Equal(SharedMessageQueueResult.WouldBlock, created.TryReceive(out _));

        attached.Dispose(); // its own mapping: detached with it
        Assert.Equal(0, dsmB.AttachedCount);
        Assert.Equal(SharedMessageQueueResult.Detached, created.TryReceive(out _));
        created.Dispose();
        Assert.Equal(0, dsmA.AttachedCount);
        Assert.Null(pm.Row(created.Handle.Inner)); // the last detach destroyed it
        Assert.Null(SharedMessageQueue.Attach(dsmB, created.Handle));
        created.Dispose(); // idempotent
    }

    [Fact]
    public void Two_threads_attaching_one_handle_at_once_both_get_the_queue()
    {
        using var pm = new DsmTestInstance("sdk-mq-race", DsmType.Posix);
        var dsmA = new DynamicSharedMemory(pm.Session(0));
        var dsmB = new DynamicSharedMemory(pm.Session(1));
        for (int round = 0; round < 30; round++)
        {
            using var created = SharedMessageQueue.Create(dsmA, 4096);
            var got = new SharedMessageQueue?[2];
            using var start = new Barrier(2);
            var threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
            {
                start.SignalAndWait();
                got[t] = SharedMessageQueue.Attach(dsmB, created.Handle);
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            Assert.All(got, q => Assert.NotNull(q));
            foreach (var q in got)
                q!.Dispose();
        }
        Assert.Equal(0, dsmB.AttachedCount);
    }

    [Fact]
    public void Detaching_the_segment_detaches_the_queue_and_ends_the_peers_wait()
    {
        using var pm = new DsmTestInstance("sdk-mq-ondetach", DsmType.Posix);
        var dsmA = new DynamicSharedMemory(pm.Session(0));
        var sessionB = pm.Session(1);
        using var receiver = SharedMessageQueue.Create(dsmA, 4096);
        receiver.SetReceiver();
        var sender = SharedMessageQueue.Attach(new DynamicSharedMemory(sessionB), receiver.Handle)!;
        sender.SetSender();
        var receiving = TestThread.Start(() => receiver.Receive(out _));
        Wait.Until(() => receiver.Inner.State.ReceiverSleeping, "the receiver to sleep");
        sessionB.DetachAll(); // the exit path: every segment detached, on-detach callbacks first
        Assert.Equal(SharedMessageQueueResult.Detached, receiving.Join());
        Assert.True(sender.IsDetached);
        Assert.Equal(SharedMessageQueueResult.Detached, sender.TrySend([1]));
        Assert.Equal(MessageQueueHeader.SenderDetached, receiver.Inner.State.Detached);
    }

    [Fact]
    public void Two_queues_share_one_segment_and_the_segments_detach_takes_them_with_it()
    {
        using var pm = new DsmTestInstance("sdk-mq-slices", DsmType.Posix);
        var dsm = new DynamicSharedMemory(pm.Session(0));
        long each = SharedMessageQueue.RequiredSize(256);
        using var segment = dsm.Create(2 * each)!;
        var first = SharedMessageQueue.Initialize(segment, 0, each);
        var second = SharedMessageQueue.Initialize(segment, each, each);
        var firstAgain = SharedMessageQueue.Attach(segment, 0, each);
        var secondAgain = SharedMessageQueue.Attach(segment, each, each);
        first.SetSender();
        firstAgain.SetReceiver();
        second.SetSender();
        secondAgain.SetReceiver();
        Assert.Equal(SharedMessageQueueResult.Success, first.TrySend([1]));
        Assert.Equal(SharedMessageQueueResult.Success, second.TrySend([2, 2]));
        Assert.Equal(SharedMessageQueueResult.Success, secondAgain.TryReceive(out var two));
        Assert.Equal(SharedMessageQueueResult.Success, firstAgain.TryReceive(out var one));
        Assert.Equal([1], one);
        Assert.Equal([2, 2], two);

        first.Dispose(); // Dispose of a queue in a caller's segment leaves the segment
        Assert.True(segment.IsAttached);
        Assert.Equal(SharedMessageQueueResult.Detached, firstAgain.TryReceive(out _));
        segment.Dispose();
        Assert.True(second.IsDetached); // the segment's detach took the rest with it
        Assert.Equal(SharedMessageQueueResult.Detached, secondAgain.TrySend([3]));
        Assert.Throws<InvalidOperationException>(() => SharedMessageQueue.Attach(segment, 0, each));
    }

    [Fact]
    public void A_queue_in_a_plain_region_has_no_handle_and_bad_arguments_are_refused()
    {
        using var pm = new DsmTestInstance("sdk-mq-region", DsmType.Posix);
        var dsm = new DynamicSharedMemory(pm.Session(0));
        using var segment = dsm.Create(4096)!;
        using var queue = SharedMessageQueue.Initialize(segment.Region);
        Assert.Equal(DsmHandle.Invalid, queue.Handle);
        Assert.Null(queue.Segment);
        Assert.Equal(4096 - 384, queue.RingSize);
        queue.SetSender();
        queue.SetReceiver(); // one object may be both ends
        Assert.Equal(SharedMessageQueueResult.Success, queue.Send(new byte[10], TimeSpan.Zero));
        Assert.Equal(SharedMessageQueueResult.Success, queue.Receive(new byte[10], out int length, TimeSpan.FromSeconds(1)));
        Assert.Equal(10, length);
        Assert.Equal(SharedMessageQueueResult.WouldBlock, queue.Receive(out _, TimeSpan.Zero));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => queue.Receive(out _, TimeSpan.FromSeconds(-2)));
        Assert.StartsWith("a queue timeout must be zero, positive or infinite", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => SharedMessageQueue.Create(dsm, SharedMessageQueue.MinimumRingSize - 1));
        Assert.Equal("shared message queue (ring of 3712 bytes)", queue.ToString());
    }
}
