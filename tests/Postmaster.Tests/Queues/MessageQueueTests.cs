using System.Runtime.InteropServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Queues;
using Postmaster.Testing;
using Postmaster.Tests.Locks;
using Xunit;

namespace Postmaster.Tests.Queues;

/// <summary>The queue engine in one process: a sender view and a receiver view of one queue, usually on two threads
/// (as two processes would be), in a real POSIX segment.</summary>
public sealed class MessageQueueTests
{
    private const long Forever = Deadline.Infinite;
    private static readonly int s_pid = Environment.ProcessId;

    private static MessageQueueResult Send(MessageQueue q, byte[] message) => q.Send(message, nowait: false, Forever, default);

    private static MessageQueueResult TrySend(MessageQueue q, byte[] message) => q.Send(message, nowait: true, Forever, default);

    private static MessageQueueResult Receive(MessageQueue q, out byte[] message) => q.Receive(out message, nowait: false, Forever, default);

    private static MessageQueueResult TryReceive(MessageQueue q, out byte[] message) => q.Receive(out message, nowait: true, Forever, default);

    private static void AssertSame(byte[] expected, byte[] actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} bytes received, {expected.Length} sent");
        int diff = expected.AsSpan().CommonPrefixLength(actual);
        Assert.True(diff == expected.Length, $"{what}: first difference at byte {diff}");
    }

    [Theory]
    [InlineData(64)]
    [InlineData(4096)]
    [InlineData(65536)]
    public void Messages_of_every_size_class_round_trip_byte_for_byte_between_two_threads(int ring)
    {
        using var q = new QueueTestRegion("sizes", ring);
        Assert.Equal(ring, q.Queue.RingSize);
        var (sender, receiver) = q.Pair();
        var sizes = QueueMessages.SizeClasses(ring);
        var sending = TestThread.Start(() =>
        {
            for (int i = 0; i < sizes.Length; i++)
                Assert.Equal(MessageQueueResult.Success, Send(sender, QueueMessages.Make(ring, i, sizes[i])));
        });
        for (int i = 0; i < sizes.Length; i++)
        {
            Assert.Equal(MessageQueueResult.Success, Receive(receiver, out var got));
            AssertSame(QueueMessages.Make(ring, i, sizes[i]), got, $"message {i} of {sizes[i]} bytes");
        }
        sending.Join();
        var state = q.Queue.State;
        Assert.Equal(state.BytesWritten, state.BytesRead);
        long expectedBytes = sizes.Sum(s => 8 + ((s + 7L) & ~7L));
        Assert.Equal(expectedBytes, state.BytesWritten);
    }

    [Fact]
    public void Receiving_into_a_buffer_round_trips_every_size_class_and_a_short_buffer_leaves_the_message_queued()
    {
        const int Ring = 1024;
        using var q = new QueueTestRegion("buffer", Ring);
        var (sender, receiver) = q.Pair();
        var sizes = QueueMessages.SizeClasses(Ring);
        var sending = TestThread.Start(() =>
        {
            for (int i = 0; i < sizes.Length; i++)
                Assert.Equal(MessageQueueResult.Success, Send(sender, QueueMessages.Make(3, i, sizes[i])));
        });
        var buffer = new byte[QueueMessages.OneMiB];
        for (int i = 0; i < sizes.Length; i++)
        {
            if (sizes[i] > 0)
            {
                Assert.Equal(MessageQueueResult.BufferTooSmall, receiver.Receive(buffer.AsSpan(0, sizes[i] - 1), out int needed, false, Forever, default));
                Assert.Equal(sizes[i], needed);
            }
            Assert.Equal(MessageQueueResult.Success, receiver.Receive(buffer, out int length, false, Forever, default));
            AssertSame(QueueMessages.Make(3, i, sizes[i]), buffer[..length], $"message {i}");
        }
        sending.Join();
    }

    [Fact]
    public void Nowait_calls_would_block_and_a_message_larger_than_the_ring_streams_through_alternating_nowait_calls()
    {
        const int Ring = 256;
        using var q = new QueueTestRegion("nowait", Ring);
        var (sender, receiver) = q.Pair();
        Assert.Equal(MessageQueueResult.WouldBlock, TryReceive(receiver, out var none));
        Assert.Empty(none);
        var message = QueueMessages.Make(1, 0, 1000);
        Assert.Equal(MessageQueueResult.WouldBlock, TrySend(sender, message)); // 8 + 1000 bytes through 256
        Assert.Equal(Ring, q.Queue.State.BytesWritten);                       // the ring is full
        var other = new byte[10];
        var e = Assert.Throws<InvalidOperationException>(() => TrySend(sender, other));
        Assert.Equal("a message of 1000 bytes is partly sent: send it again, unchanged, before a message of 10 bytes", e.Message);
        var sent = MessageQueueResult.WouldBlock;
        for (int round = 0; ; round++)
        {
            Assert.True(round < 100, "the message did not get through");
            var received = TryReceive(receiver, out var got);
            if (received == MessageQueueResult.Success)
            {
                AssertSame(message, got, "the streamed message");
                break;
            }
            Assert.Equal(MessageQueueResult.WouldBlock, received);
            if (sent != MessageQueueResult.Success)
                sent = TrySend(sender, message);
        }
        Assert.Equal(MessageQueueResult.Success, sent);
        Assert.Equal(MessageQueueResult.Success, TrySend(sender, other)); // the next message
        Assert.Equal(MessageQueueResult.Success, TryReceive(receiver, out var last));
        Assert.Equal(other, last);
    }

    [Fact]
    public void A_timeout_gives_would_block_and_cancellation_throws_and_the_message_in_progress_goes_on()
    {
        const int Ring = 128;
        using var q = new QueueTestRegion("cancel", Ring);
        var (sender, receiver) = q.Pair();
        Assert.Equal(MessageQueueResult.WouldBlock, receiver.Receive(out _, false, Deadline.After(TimeSpan.FromMilliseconds(30)), default));
        var message = QueueMessages.Make(5, 0, 500);
        Assert.Equal(MessageQueueResult.WouldBlock, TrySend(sender, message));
        using var cts = new CancellationTokenSource();
        var receiving = TestThread.Start(() => Assert.Throws<OperationCanceledException>(() =>
            receiver.Receive(out _, false, Forever, cts.Token)));
        Wait.Until(() => q.Queue.State is { ReceiverSleeping: true, BytesRead: > 0 }, "the receiver to take the first part and sleep");
        cts.Cancel();
        receiving.Join();
        Assert.Equal(MessageQueueResult.WouldBlock, sender.Send(message, false, Deadline.After(TimeSpan.FromMilliseconds(30)), default));
        var finishing = TestThread.Start(() => Assert.Equal(MessageQueueResult.Success, Send(sender, message)));
        Assert.Equal(MessageQueueResult.Success, Receive(receiver, out var got));
        finishing.Join();
        AssertSame(message, got, "the message received across a cancellation");
    }

    [Fact]
    public void A_short_buffer_in_the_middle_of_a_message_is_refused_and_the_message_goes_on_in_another_buffer()
    {
        const int Ring = 64;
        using var q = new QueueTestRegion("midbuffer", Ring);
        var (sender, receiver) = q.Pair();
        var message = QueueMessages.Make(9, 0, 300);
        Assert.Equal(MessageQueueResult.WouldBlock, TrySend(sender, message));
        var first = new byte[300];
        Assert.Equal(MessageQueueResult.WouldBlock, receiver.Receive(first, out _, true, Forever, default)); // took a part
        Assert.Equal(MessageQueueResult.BufferTooSmall, receiver.Receive(new byte[10], out int needed, true, Forever, default));
        Assert.Equal(300, needed);
        var finishing = TestThread.Start(() => Assert.Equal(MessageQueueResult.Success, Send(sender, message)));
        var second = new byte[400];
        Assert.Equal(MessageQueueResult.Success, receiver.Receive(second, out int length, false, Forever, default));
        finishing.Join();
        AssertSame(message, second[..length], "the message continued in a second buffer");
    }

    [Theory]
    [InlineData("magic", "shared message queue: wrong magic number 0x514D4D51 (expected 0x514D4D50)")]
    [InlineData("version", "shared message queue: wrong layout version 2 (expected 1)")]
    [InlineData("size", "shared message queue: total size 449 does not match the region of 448 bytes")]
    [InlineData("ring", "shared message queue: ring of 56 bytes at offset 384 does not fit a region of 448 bytes (expected 64 bytes at offset 384)")]
    [InlineData("counters", "shared message queue: byte counts written 0 and read 8 are out of order")]
    [InlineData("bits", "shared message queue: unknown detached bits 0x00000010")]
    public void A_tampered_header_is_refused_at_attach(string field, string detail)
    {
        using var q = new QueueTestRegion("tamper", 64);
        ref var h = ref q.Region.Ref<MessageQueueHeader>(0);
        switch (field)
        {
            case "magic": h.Magic ^= 1; break;
            case "version": h.LayoutVersion = 2; break;
            case "size": h.TotalSize++; break;
            case "ring": h.RingSize -= 8; break;
            case "counters": h.BytesRead = 8; break;
            case "bits": h.Detached = 16; break;
        }
        var e = Assert.Throws<ShmemCorruptException>(() => q.View());
        Assert.Equal("shared message queue is corrupt", e.Message);
        Assert.Equal(detail, e.Detail);
    }

    [Fact]
    public void A_region_that_was_never_a_queue_or_is_another_size_is_refused()
    {
        using var q = new QueueTestRegion("never", 64);
        var e = Assert.Throws<ShmemCorruptException>(() => MessageQueue.Attach(q.Region.Slice(0, q.Region.Size - 8)));
        Assert.Equal("shared message queue: total size 448 does not match the region of 440 bytes", e.Detail);
        q.Region.Span(0, 8).Clear();
        e = Assert.Throws<ShmemCorruptException>(() => q.View());
        Assert.Equal("shared message queue: wrong magic number 0x00000000 (expected 0x514D4D50)", e.Detail);
        var small = Assert.Throws<ArgumentException>(() => MessageQueue.Initialize(q.Region.Slice(0, 400)));
        Assert.StartsWith("a shared message queue needs at least 448 bytes, the region has 400", small.Message);
    }

    [Fact]
    public void A_second_sender_or_receiver_is_refused_and_naming_no_role_is_an_error()
    {
        using var q = new QueueTestRegion("second", 64);
        var first = q.View();
        var none = Assert.Throws<InvalidOperationException>(() => Send(first, [1]));
        Assert.Equal("this process is not the sender of the shared message queue (call SetSender first)", none.Message);
        first.SetSender();
        Assert.Throws<InvalidOperationException>(first.SetSender);
        var second = q.View();
        var e = Assert.Throws<ShmemException>(second.SetSender);
        Assert.Equal("shared message queue already has a sender", e.Message);
        Assert.Equal($"This process ({s_pid}) attached as its sender through another handle.", e.Detail);
        second.SetReceiver();
        var third = q.View();
        e = Assert.Throws<ShmemException>(third.SetReceiver);
        Assert.Equal("shared message queue already has a receiver", e.Message);
        Assert.Equal((s_pid, s_pid), (q.Queue.State.SenderPid, q.Queue.State.ReceiverPid));
    }

    [Fact]
    public void The_receiver_detaching_ends_a_send_blocked_on_a_full_ring()
    {
        using var q = new QueueTestRegion("rdetach", 64);
        var (sender, receiver) = q.Pair();
        var sending = TestThread.Start(() => Send(sender, new byte[1000]));
        Wait.Until(() => q.Queue.State.SenderSleeping, "the sender to sleep on the full ring");
        receiver.Detach();
        Assert.Equal(MessageQueueResult.Detached, sending.Join());
        Assert.Equal(MessageQueueHeader.ReceiverDetached, q.Queue.State.Detached);
        Assert.Equal(MessageQueueResult.Detached, Send(sender, [1]));
        Assert.Equal(MessageQueueResult.Detached, Receive(receiver, out _)); // a detached view
    }

    [Fact]
    public void The_sender_detaching_ends_a_blocked_receive()
    {
        using var q = new QueueTestRegion("sdetach", 64);
        var (sender, receiver) = q.Pair();
        var receiving = TestThread.Start(() => Receive(receiver, out _));
        Wait.Until(() => q.Queue.State.ReceiverSleeping, "the receiver to sleep on the empty ring");
        sender.Detach();
        Assert.Equal(MessageQueueResult.Detached, receiving.Join());
        Assert.Equal(MessageQueueHeader.SenderDetached, q.Queue.State.Detached);
    }

    [Fact]
    public void Messages_complete_before_a_clean_sender_detach_are_delivered_and_a_partial_one_is_not()
    {
        const int Ring = 4096;
        using var q = new QueueTestRegion("drain", Ring);
        var (sender, receiver) = q.Pair();
        int[] sizes = [0, 100, 1000];
        for (int i = 0; i < sizes.Length; i++)
            Assert.Equal(MessageQueueResult.Success, TrySend(sender, QueueMessages.Make(11, i, sizes[i])));
        Assert.Equal(MessageQueueResult.WouldBlock, TrySend(sender, new byte[2 * Ring])); // half written
        sender.Detach();
        for (int i = 0; i < sizes.Length; i++)
        {
            Assert.Equal(MessageQueueResult.Success, Receive(receiver, out var got));
            AssertSame(QueueMessages.Make(11, i, sizes[i]), got, $"message {i}");
        }
        Assert.Equal(MessageQueueResult.Detached, Receive(receiver, out var partial));
        Assert.Empty(partial);
        Assert.Equal(MessageQueueResult.Detached, TryReceive(receiver, out _));
    }

    [Fact]
    public void Detach_from_another_thread_ends_this_views_own_wait_and_then_every_operation_says_detached()
    {
        using var q = new QueueTestRegion("selfdetach", 64);
        var (_, receiver) = q.Pair();
        var receiving = TestThread.Start(() => Receive(receiver, out _));
        Wait.Until(() => q.Queue.State.ReceiverSleeping, "the receiver to sleep");
        receiver.Detach();
        Assert.Equal(MessageQueueResult.Detached, receiving.Join());
        Assert.True(receiver.IsDetached);
        Assert.Equal(MessageQueueResult.Detached, receiver.Receive(new byte[8], out _, true, Forever, default));
        Assert.Throws<InvalidOperationException>(receiver.SetSender);
        receiver.Detach(); // idempotent
    }

    [Fact]
    public void A_length_word_beyond_any_message_is_corruption()
    {
        using var q = new QueueTestRegion("badlength", 64);
        var (sender, receiver) = q.Pair();
        Assert.Equal(MessageQueueResult.Success, TrySend(sender, [1, 2, 3]));
        q.Region.Ref<long>(MessageQueueHeader.Size) = -5;
        var e = Assert.Throws<ShmemCorruptException>(() => TryReceive(receiver, out _));
        Assert.Equal("The message at byte 0 has length -5 (at most 2147483591 is possible).", e.Detail);
    }

    [Fact]
    public void An_expected_peer_that_is_already_dead_ends_the_wait_with_detached()
    {
        using var q = new QueueTestRegion("deadpeer", 64);
        var receiver = q.View();
        receiver.SetReceiver();
        receiver.ExpectPeer(DeadPid());
        Assert.Equal(MessageQueueResult.Detached, Receive(receiver, out _));
        Assert.Equal(MessageQueueHeader.SenderDied, q.Queue.State.Detached);
    }

    [Fact]
    public void Waits_with_short_timeouts_in_a_loop_still_notice_a_dead_peer()
    {
        using var q = new QueueTestRegion("shortwaits", 64);
        var receiver = q.View();
        receiver.SetReceiver();
        receiver.ExpectPeer(DeadPid());
        var result = MessageQueueResult.WouldBlock;
        for (int i = 0; i < 1000 && result == MessageQueueResult.WouldBlock; i++)
            result = receiver.Receive(out _, false, Deadline.After(TimeSpan.FromMilliseconds(2)), default); // shorter than a check slice
        Assert.Equal(MessageQueueResult.Detached, result);
    }

    [Fact]
    public void A_cancelled_receive_into_a_buffer_keeps_what_it_took_and_the_next_one_completes_the_message()
    {
        const int Ring = 128;
        using var q = new QueueTestRegion("cancelbuffer", Ring);
        var (sender, receiver) = q.Pair();
        var message = QueueMessages.Make(6, 0, 500);
        Assert.Equal(MessageQueueResult.WouldBlock, TrySend(sender, message));
        using var cts = new CancellationTokenSource();
        var first = new byte[600];
        var receiving = TestThread.Start(() => Assert.Throws<OperationCanceledException>(() =>
            receiver.Receive(first, out _, false, Forever, cts.Token)));
        Wait.Until(() => q.Queue.State is { ReceiverSleeping: true, BytesRead: > 0 }, "the receiver to take the first part and sleep");
        cts.Cancel();
        receiving.Join();
        var finishing = TestThread.Start(() => Assert.Equal(MessageQueueResult.Success, Send(sender, message)));
        var second = new byte[600];
        Assert.Equal(MessageQueueResult.Success, receiver.Receive(second, out int length, false, Forever, default));
        finishing.Join();
        AssertSame(message, second[..length], "the message received into a buffer across a cancellation");
    }

    [Fact]
    public void A_message_none_of_which_was_sent_does_not_hold_up_another()
    {
        using var q = new QueueTestRegion("unsent", 64);
        var (sender, receiver) = q.Pair();
        var filler = QueueMessages.Make(7, 0, 56); // fills the 64-byte ring with its length word
        Assert.Equal(MessageQueueResult.Success, TrySend(sender, filler));
        Assert.Equal(MessageQueueResult.WouldBlock, TrySend(sender, QueueMessages.Make(8, 0, 10))); // not a byte of it fits
        Assert.Equal(MessageQueueResult.Success, TryReceive(receiver, out var got));
        Assert.Equal(filler, got);
        var other = QueueMessages.Make(9, 0, 20);
        Assert.Equal(MessageQueueResult.Success, TrySend(sender, other)); // another length: fine, nothing of the first was sent
        Assert.Equal(MessageQueueResult.Success, TryReceive(receiver, out got));
        Assert.Equal(other, got);
    }

    /// <summary>The pid of a process that has exited and been reaped.</summary>
    internal static int DeadPid()
    {
        using var p = System.Diagnostics.Process.Start("/bin/true")!;
        p.WaitForExit();
        return p.Id;
    }
}

/// <summary>Pins the queue header's layout (C# has no static_assert): a failure is an ABI change, which bumps
/// <see cref="MessageQueueHeader.CurrentLayoutVersion"/>.</summary>
public sealed class MessageQueueLayoutTests
{
    [Fact]
    public void The_header_is_six_cache_lines_with_each_sides_words_on_lines_of_their_own()
    {
        Assert.Equal(384, System.Runtime.CompilerServices.Unsafe.SizeOf<MessageQueueHeader>());
        (string Field, int Offset)[] expected =
        [
            (nameof(MessageQueueHeader.Magic), 0), (nameof(MessageQueueHeader.LayoutVersion), 4),
            (nameof(MessageQueueHeader.TotalSize), 8), (nameof(MessageQueueHeader.RingSize), 16),
            (nameof(MessageQueueHeader.RingOffset), 24), (nameof(MessageQueueHeader.SenderPid), 32),
            (nameof(MessageQueueHeader.SenderStartTicks), 40), (nameof(MessageQueueHeader.ReceiverPid), 48),
            (nameof(MessageQueueHeader.ReceiverStartTicks), 56), (nameof(MessageQueueHeader.Detached), 64),
            (nameof(MessageQueueHeader.BytesWritten), 128), (nameof(MessageQueueHeader.BytesRead), 192),
            (nameof(MessageQueueHeader.ReceiverSleeping), 256), (nameof(MessageQueueHeader.ReceiverFutex), 260),
            (nameof(MessageQueueHeader.SenderSleeping), 320), (nameof(MessageQueueHeader.SenderFutex), 324),
        ];
        foreach (var (field, offset) in expected)
            Assert.Equal((field, offset), (field, (int)Marshal.OffsetOf<MessageQueueHeader>(field)));
        Assert.Equal(0x514D_4D50u, MessageQueueHeader.ExpectedMagic);
        Assert.Equal(1u, MessageQueueHeader.CurrentLayoutVersion);
    }
}
