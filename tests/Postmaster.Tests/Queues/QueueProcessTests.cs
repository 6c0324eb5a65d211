using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Queues;
using Postmaster.Testing;
using Postmaster.Tests.Dsm;
using Postmaster.Tests.Locks;
using Postmaster.Tests.Support;
using Postmaster.Workers;
using Xunit;

namespace Postmaster.Tests.Queues;

/// <summary>
/// Queues between real processes: the test is one end (through the SDK, in a DSM segment of a
/// <see cref="DsmTestInstance"/>), a TestChild "queue" child the other. Deaths are SIGKILLs: the survivor must see
/// Detached within the global timeout, never hang.
/// </summary>
[Collection(DsmProcessCollection.Name)]
public sealed class QueueProcessTests
{
    private const int Ring = 4096;
    private const int Count = 30; // three rounds of the ten size classes

    private static SharedMessageQueue CreateQueue(DsmTestInstance pm) =>
        SharedMessageQueue.Create(new DynamicSharedMemory(pm.Session(0)), Ring);

    private static void AssertMessage(int seed, int index, byte[] got)
    {
        var expected = QueueMessages.Make(seed, index, QueueMessages.MixedSize(Ring, index));
        Assert.True(expected.AsSpan().SequenceEqual(got), $"message {index}: {got.Length} bytes received, {expected.Length} sent, contents differ");
    }

    private static ChildProcess Attached(DsmTestInstance pm, SharedMessageQueue queue, string role)
    {
        var child = pm.StartChild(1, "queue");
        child.WriteLine($"attach {queue.Handle} {role}");
        Assert.Equal($"attached {queue.Handle} {Ring}", child.WaitForLine("attached"));
        return child;
    }

    [Fact]
    public void A_child_sends_messages_of_every_size_class_and_the_parent_receives_them_intact()
    {
        using var pm = new DsmTestInstance("mq-c2p", DsmType.Posix);
        using var queue = CreateQueue(pm);
        queue.SetReceiver();
        using var child = Attached(pm, queue, "sender");
        queue.ExpectPeer(child.Pid);
        child.WriteLine($"send-mixed {Count} 42");
        for (int i = 0; i < Count; i++)
        {
            Assert.Equal(SharedMessageQueueResult.Success, queue.Receive(out var message));
            AssertMessage(42, i, message);
        }
        Assert.Equal($"sent {Count}", child.WaitForLine("sent"));
        child.WriteLine("exit");
        child.WaitForLine("bye");
        Assert.Equal(0, child.WaitForExit());
        Assert.Equal(SharedMessageQueueResult.Detached, queue.Receive(out _)); // it detached on its way out
        Assert.Equal(MessageQueueHeader.SenderDetached, queue.Inner.State.Detached);
    }

    [Fact]
    public void The_parent_sends_messages_of_every_size_class_and_a_child_receives_them_intact()
    {
        using var pm = new DsmTestInstance("mq-p2c", DsmType.Posix);
        using var queue = CreateQueue(pm);
        queue.SetSender();
        using var child = Attached(pm, queue, "receiver");
        queue.ExpectPeer(child.Pid);
        child.WriteLine($"receive-mixed {Count} 7");
        for (int i = 0; i < Count; i++)
            Assert.Equal(SharedMessageQueueResult.Success, queue.Send(QueueMessages.Make(7, i, QueueMessages.MixedSize(Ring, i))));
        Assert.Equal($"received {Count}", child.WaitForLine("received"));
        child.WriteLine("exit");
        Assert.Equal(0, child.WaitForExit());
        Assert.Equal(SharedMessageQueueResult.Detached, queue.Send(new byte[1]));
    }

    [Fact]
    public void A_sender_killed_mid_message_ends_the_receivers_blocked_receive_with_detached_after_the_complete_messages()
    {
        using var pm = new DsmTestInstance("mq-killsender", DsmType.Posix);
        using var queue = CreateQueue(pm);
        queue.SetReceiver();
        using var child = Attached(pm, queue, "sender");
        child.WriteLine("send-mixed 3 1");                 // 0, 1 and 7 bytes
        Assert.Equal("sent 3", child.WaitForLine("sent"));
        child.WriteLine($"send-partial {10 * Ring}");      // begun, the ring full, never finished
        child.WaitForLine("partial");
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(SharedMessageQueueResult.Success, queue.Receive(out var message));
            AssertMessage(1, i, message);
        }
        var receiving = TestThread.Start(() => queue.Receive(out _));
        Wait.Until(() => queue.Inner.State is { ReceiverSleeping: true, BytesRead: >= Ring }, "the receiver to drain the ring and sleep");
        child.Kill(Signals.SIGKILL);
        Assert.Equal(SharedMessageQueueResult.Detached, receiving.Join());
        Assert.Equal(MessageQueueHeader.SenderDied, queue.Inner.State.Detached);
        Assert.Equal(SharedMessageQueueResult.Detached, queue.TryReceive(out _));
    }

    [Fact]
    public void A_receiver_killed_while_the_sender_is_blocked_on_a_full_ring_ends_the_send_with_detached()
    {
        using var pm = new DsmTestInstance("mq-killreceiver", DsmType.Posix);
        using var queue = CreateQueue(pm);
        queue.SetSender();
        using var child = Attached(pm, queue, "receiver");
        var sending = TestThread.Start(() => queue.Send(new byte[10 * Ring]));
        Wait.Until(() => queue.Inner.State is { SenderSleeping: true, BytesWritten: Ring }, "the sender to fill the ring and sleep");
        child.Kill(Signals.SIGKILL);
        Assert.Equal(SharedMessageQueueResult.Detached, sending.Join());
        Assert.Equal(MessageQueueHeader.ReceiverDied, queue.Inner.State.Detached);
    }

    [Theory]
    [InlineData("receiver")]
    [InlineData("sender")]
    public void An_expected_peer_that_dies_before_attaching_ends_the_wait_with_detached(string role)
    {
        using var pm = new DsmTestInstance("mq-expected-" + role, DsmType.Posix);
        using var queue = CreateQueue(pm);
        using var child = pm.StartChild(1, "queue"); // never attaches the queue
        queue.ExpectPeer(child.Pid);
        TestThread<SharedMessageQueueResult> waiting;
        if (role == "receiver")
        {
            queue.SetReceiver();
            waiting = TestThread.Start(() => queue.Receive(out _));
            Wait.Until(() => queue.Inner.State.ReceiverSleeping, "the receiver to sleep");
        }
        else
        {
            queue.SetSender();
            waiting = TestThread.Start(() => queue.Send(new byte[10 * Ring]));
            Wait.Until(() => queue.Inner.State.SenderSleeping, "the sender to fill the ring and sleep");
        }
        child.Kill(Signals.SIGKILL);
        Assert.Equal(SharedMessageQueueResult.Detached, waiting.Join());
        Assert.Equal(role == "receiver" ? MessageQueueHeader.SenderDied : MessageQueueHeader.ReceiverDied, queue.Inner.State.Detached);
    }

    [Fact]
    public void A_second_sender_in_another_process_is_refused_naming_the_first()
    {
        using var pm = new DsmTestInstance("mq-second", DsmType.Posix);
        using var queue = CreateQueue(pm);
        queue.SetSender();
        using var child = pm.StartChild(1, "queue");
        child.WriteLine($"attach {queue.Handle} sender");
        Assert.Equal("error shared message queue already has a sender", child.WaitForLine("error"));
        child.WriteLine("exit");
        Assert.Equal(0, child.WaitForExit());
        Assert.Equal(ProcessControl.CurrentPid, queue.Inner.State.SenderPid);
    }
}
