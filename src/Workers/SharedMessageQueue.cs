using Postmaster.Shmem.Errors;
using Engine = Postmaster.Shmem.Queues;
using EngineDsm = Postmaster.Shmem.Dsm;
using EngineLocks = Postmaster.Shmem.Locks;

namespace Postmaster.Workers;

/// <summary>
/// A single-producer, single-consumer message queue in shared memory (PostgreSQL's shm_mq): one process sends
/// messages of any size, another receives each one whole, through a byte ring in dynamic shared memory (or in any
/// <see cref="ShmemRegion"/>). It is how a backend and the dynamic workers it starts talk, as PostgreSQL's parallel
/// query does: the backend creates a queue (<see cref="Create"/>), calls <see cref="SetReceiver"/>, starts a worker
/// with <see cref="Handle"/> as its argument and calls <see cref="ExpectPeer(DynamicWorkerHandle)"/>; the worker
/// attaches (<see cref="Attach(DynamicSharedMemory, DsmHandle)"/>), calls <see cref="SetSender"/> and sends.
/// <para><b>Messages.</b> Each is an 8-byte length and its bytes (padded to 8) in the ring; one larger than the ring
/// streams through it in parts while the receiver copies them out. At most <see cref="MaxMessageSize"/> bytes; 0 is a
/// valid message.</para>
/// <para><b>Ends.</b> A queue has one sender and one receiver for its whole life (a second one is a
/// <see cref="ShmemException"/> naming the first). When one end detaches (<see cref="Detach"/>, <see cref="Dispose"/>,
/// its segment detached, its process exiting) or dies (even by SIGKILL, mid-message), the other's operations return
/// <see cref="SharedMessageQueueResult.Detached"/>: at once for a clean detach, within about 20 ms for a death. A
/// receiver still gets every message completed before the sender went. No lock is held by a queue, so a process
/// killed while using one costs the instance only its ordinary clean-up (no crash restart).</para>
/// <para><b>Threads.</b> Any thread may use a queue; sends are serialised among themselves and so are receives (one
/// sender thread and one receiver thread at a time). <see cref="Detach"/> from any thread ends the waits in progress.</para>
/// <para><b>Waiting.</b> <c>Send</c> and <c>Receive</c> wait (spinning briefly, then sleeping on a futex; no system
/// call while the peer is awake); a timeout gives <see cref="SharedMessageQueueResult.WouldBlock"/>, and
/// cancellation throws <see cref="OperationCanceledException"/>, both leaving the message in progress to continue
/// with the next call. <c>TrySend</c> and <c>TryReceive</c> never wait.</para>
/// </summary>
public sealed class SharedMessageQueue : IDisposable
{
    /// <summary>The smallest ring, in bytes.</summary>
    public const int MinimumRingSize = (int)Engine.MessageQueue.MinimumRingSize;

    /// <summary>The largest message, in bytes (what a byte array can hold).</summary>
    public const int MaxMessageSize = Engine.MessageQueue.MaxMessageSize;

    private readonly Engine.MessageQueue _queue;
    private readonly DsmSegment? _segment;
    private readonly bool _ownsSegment;
    private readonly Action<EngineDsm.DsmSegment>? _onDetach;

    private SharedMessageQueue(Engine.MessageQueue queue, DsmSegment? segment, bool ownsSegment)
    {
        _queue = queue;
        _segment = segment;
        _ownsSegment = ownsSegment;
        if (segment is not null)
        {
            _onDetach = _ => queue.Detach();
            segment.Inner.OnDetach(_onDetach);
        }
    }

    /// <summary>The engine's queue behind this facade.</summary>
    internal Engine.MessageQueue Inner => _queue;

    /// <summary>The handle of the dynamic shared memory segment the queue lives in: give it to the peer (as text in a
    /// worker's argument, <see cref="DsmHandle.ToString"/>) to <see cref="Attach(DynamicSharedMemory, DsmHandle)"/>.
    /// <see cref="DsmHandle.Invalid"/> for a queue in a plain <see cref="ShmemRegion"/>.</summary>
    public DsmHandle Handle => _segment?.Handle ?? DsmHandle.Invalid;

    /// <summary>The segment the queue lives in (null for a queue in a plain <see cref="ShmemRegion"/>).</summary>
    public DsmSegment? Segment => _segment;

    /// <summary>Bytes of the ring messages stream through.</summary>
    public long RingSize => _queue.RingSize;

    /// <summary>True once this queue was detached here (<see cref="Detach"/>, <see cref="Dispose"/>, or its segment).</summary>
    public bool IsDetached => _queue.IsDetached;

    /// <summary>The bytes of shared memory a queue with a ring of <paramref name="ringSize"/> bytes takes (a header
    /// of a few cache lines, then the ring rounded up to 8 bytes): what to reserve for
    /// <see cref="Initialize(ShmemRegion)"/>.</summary>
    /// <param name="ringSize">At least <see cref="MinimumRingSize"/>.</param>
    public static long RequiredSize(int ringSize) => Engine.MessageQueue.RequiredSize(ringSize);

    /// <summary>
    /// Creates a queue with a ring of <paramref name="ringSize"/> bytes in a new dynamic shared memory segment of its
    /// own (PostgreSQL's dsm_create + shm_mq_create). The queue owns that mapping: <see cref="Dispose"/> detaches the
    /// segment too (the last process to detach it destroys it).
    /// </summary>
    /// <param name="dsm">This process's dynamic shared memory (<see cref="WorkerContext.Dsm"/>).</param>
    /// <param name="ringSize">Bytes of the ring, at least <see cref="MinimumRingSize"/>; larger rings let the sender
    /// run further ahead of the receiver.</param>
    public static SharedMessageQueue Create(DynamicSharedMemory dsm, int ringSize)
    {
        ArgumentNullException.ThrowIfNull(dsm);
        long size = RequiredSize(ringSize);
        var segment = dsm.Create(size)!;
        try
        {
            return new SharedMessageQueue(Engine.MessageQueue.Initialize(segment.Region.Inner), segment, ownsSegment: true);
        }
        catch
        {
            dsm.Detach(segment);
            throw;
        }
    }

    /// <summary>Serialises <see cref="Attach(DynamicSharedMemory, DsmHandle)"/>'s find-or-attach in this process.</summary>
    private static readonly object s_attachGate = new();

    /// <summary>
    /// Attaches the queue <see cref="Create"/> made in the segment <paramref name="handle"/> names, after validating
    /// its header (<see cref="ShmemCorruptException"/> when it is not a queue). The segment is attached here unless
    /// this process has it already; a mapping made here is the queue's own and <see cref="Dispose"/> detaches it.
    /// </summary>
    /// <param name="dsm">This process's dynamic shared memory (<see cref="WorkerContext.Dsm"/>).</param>
    /// <param name="handle">From the creator (<see cref="Handle"/>).</param>
    /// <returns>The queue; null when the segment is gone (its creator and everyone else detached).</returns>
    public static SharedMessageQueue? Attach(DynamicSharedMemory dsm, DsmHandle handle)
    {
        ArgumentNullException.ThrowIfNull(dsm);
        DsmSegment? existing, segment;
        lock (s_attachGate) // two threads attaching one handle: one maps it, the other finds that mapping
        {
            existing = dsm.FindMapping(handle);
            segment = existing ?? dsm.Attach(handle);
        }
        if (segment is null)
            return null;
        try
        {
            return new SharedMessageQueue(Engine.MessageQueue.Attach(segment.Region.Inner), segment, ownsSegment: existing is null);
        }
        catch
        {
            if (existing is null)
                dsm.Detach(segment);
            throw;
        }
    }

    /// <summary>Lays out a new queue in <paramref name="size"/> bytes at <paramref name="offset"/> of
    /// <paramref name="segment"/> (several queues can share one segment). The queue detaches itself when this process
    /// detaches the segment; <see cref="Dispose"/> leaves the segment attached.</summary>
    /// <param name="segment">A segment this process has attached.</param>
    /// <param name="offset">Byte offset in the segment, a multiple of 8.</param>
    /// <param name="size">Bytes for the queue (<see cref="RequiredSize"/>); the ring gets what the header leaves.</param>
    public static SharedMessageQueue Initialize(DsmSegment segment, long offset, long size)
    {
        CheckAttached(segment);
        return new SharedMessageQueue(Engine.MessageQueue.Initialize(segment.Region.Slice(offset, size).Inner), segment, ownsSegment: false);
    }

    /// <summary>Attaches the queue laid out at <paramref name="offset"/> of <paramref name="segment"/> by
    /// <see cref="Initialize(DsmSegment, long, long)"/> with the same <paramref name="size"/>, validating its header
    /// (<see cref="ShmemCorruptException"/>). The queue detaches itself when this process detaches the segment.</summary>
    /// <param name="segment">A segment this process has attached.</param>
    /// <param name="offset">Byte offset in the segment.</param>
    /// <param name="size">Bytes of the queue, as given to Initialize.</param>
    public static SharedMessageQueue Attach(DsmSegment segment, long offset, long size)
    {
        CheckAttached(segment);
        return new SharedMessageQueue(Engine.MessageQueue.Attach(segment.Region.Slice(offset, size).Inner), segment, ownsSegment: false);
    }

    /// <summary>Lays out a new queue over the whole of <paramref name="region"/> (e.g. main-segment space from
    /// <see cref="WorkerContext.InitStruct"/>; 8-byte aligned). The region must stay mapped as long as the queue is used.</summary>
    /// <param name="region">At least <see cref="RequiredSize"/>(<see cref="MinimumRingSize"/>) bytes.</param>
    public static SharedMessageQueue Initialize(ShmemRegion region) =>
        new(Engine.MessageQueue.Initialize(region.Inner), null, ownsSegment: false);

    /// <summary>Attaches the queue laid out over <paramref name="region"/> (the same bytes), validating its header
    /// (<see cref="ShmemCorruptException"/>).</summary>
    /// <param name="region">The queue's region.</param>
    public static SharedMessageQueue Attach(ShmemRegion region) =>
        new(Engine.MessageQueue.Attach(region.Inner), null, ownsSegment: false);

    /// <summary>Makes this process the queue's sender (PostgreSQL's shm_mq_set_sender). Throws
    /// <see cref="ShmemException"/> <c>shared message queue already has a sender</c> when another process (or
    /// another object of this one) is.</summary>
    public void SetSender() => _queue.SetSender();

    /// <summary>Makes this process the queue's receiver (PostgreSQL's shm_mq_set_receiver); <see cref="ShmemException"/>
    /// <c>shared message queue already has a receiver</c> when there is one.</summary>
    public void SetReceiver() => _queue.SetReceiver();

    /// <summary>Names the dynamic worker expected to take the other end (PostgreSQL's shm_mq_set_handle): if it dies
    /// before it attaches, waits end with <see cref="SharedMessageQueueResult.Detached"/> instead of lasting for ever.</summary>
    /// <param name="worker">From <see cref="WorkerContext.StartDynamicWorker"/>.</param>
    public void ExpectPeer(DynamicWorkerHandle worker) => _queue.ExpectPeer(worker.Pid);

    /// <summary>Names the process expected to take the other end, by pid (see the
    /// <see cref="ExpectPeer(DynamicWorkerHandle)"/> overload). It is identified by its start time now, so a later
    /// process with the same pid is never taken for it.</summary>
    /// <param name="pid">The peer's process id.</param>
    public void ExpectPeer(int pid) => _queue.ExpectPeer(pid);

    /// <summary>Sends <paramref name="message"/>, waiting as long as the ring is full (PostgreSQL's shm_mq_send).</summary>
    /// <param name="message">The bytes; up to <see cref="MaxMessageSize"/>.</param>
    /// <param name="cancellationToken">Ends the wait with <see cref="OperationCanceledException"/>; the message is
    /// then partly sent and must be sent again, unchanged, before any other.</param>
    /// <returns><see cref="SharedMessageQueueResult.Success"/>, or <see cref="SharedMessageQueueResult.Detached"/>.</returns>
    public SharedMessageQueueResult Send(ReadOnlySpan<byte> message, CancellationToken cancellationToken = default) =>
        (SharedMessageQueueResult)_queue.Send(message, nowait: false, EngineLocks.Deadline.Infinite, cancellationToken);

    /// <summary>Sends <paramref name="message"/>, waiting at most <paramref name="timeout"/> for room in the ring.</summary>
    /// <param name="message">The bytes; up to <see cref="MaxMessageSize"/>.</param>
    /// <param name="timeout">The longest wait; <see cref="Timeout.InfiniteTimeSpan"/> for none.</param>
    /// <param name="cancellationToken">Ends the wait with <see cref="OperationCanceledException"/>.</param>
    /// <returns>Success; <see cref="SharedMessageQueueResult.WouldBlock"/> when the timeout passed (the message is partly
    /// sent: send it again, unchanged, before any other); or Detached.</returns>
    public SharedMessageQueueResult Send(ReadOnlySpan<byte> message, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        (SharedMessageQueueResult)_queue.Send(message, nowait: false, DeadlineAfter(timeout), cancellationToken);

    /// <summary>Sends what fits of <paramref name="message"/> without waiting (shm_mq_send with nowait).</summary>
    /// <param name="message">The bytes; up to <see cref="MaxMessageSize"/>.</param>
    /// <returns>Success; <see cref="SharedMessageQueueResult.WouldBlock"/> when it did not all fit (call again with the
    /// same message when the receiver had time to read); or Detached.</returns>
    public SharedMessageQueueResult TrySend(ReadOnlySpan<byte> message) =>
        (SharedMessageQueueResult)_queue.Send(message, nowait: true, EngineLocks.Deadline.Infinite, default);

    /// <summary>Receives the next message into a new array, waiting as long as there is none (shm_mq_receive).</summary>
    /// <param name="message">The message (empty unless Success).</param>
    /// <param name="cancellationToken">Ends the wait with <see cref="OperationCanceledException"/>; what was received of
    /// a message is kept for the next call.</param>
    /// <returns><see cref="SharedMessageQueueResult.Success"/>, or <see cref="SharedMessageQueueResult.Detached"/>.</returns>
    public SharedMessageQueueResult Receive(out byte[] message, CancellationToken cancellationToken = default) =>
        (SharedMessageQueueResult)_queue.Receive(out message, nowait: false, EngineLocks.Deadline.Infinite, cancellationToken);

    /// <summary>Receives the next message into a new array, waiting at most <paramref name="timeout"/>.</summary>
    /// <param name="message">The message (empty unless Success).</param>
    /// <param name="timeout">The longest wait; <see cref="Timeout.InfiniteTimeSpan"/> for none.</param>
    /// <param name="cancellationToken">Ends the wait with <see cref="OperationCanceledException"/>.</param>
    /// <returns>Success; <see cref="SharedMessageQueueResult.WouldBlock"/> when the timeout passed; or Detached.</returns>
    public SharedMessageQueueResult Receive(out byte[] message, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        (SharedMessageQueueResult)_queue.Receive(out message, nowait: false, DeadlineAfter(timeout), cancellationToken);

    /// <summary>Receives the next message into a new array if it is complete in the ring, without waiting.</summary>
    /// <param name="message">The message (empty unless Success).</param>
    /// <returns>Success, <see cref="SharedMessageQueueResult.WouldBlock"/>, or Detached.</returns>
    public SharedMessageQueueResult TryReceive(out byte[] message) =>
        (SharedMessageQueueResult)_queue.Receive(out message, nowait: true, EngineLocks.Deadline.Infinite, default);

    /// <summary>Receives the next message into <paramref name="buffer"/>, waiting as long as there is none: no
    /// allocation.</summary>
    /// <param name="buffer">Where the message goes (<c>buffer[..length]</c>).</param>
    /// <param name="length">The message's length (also with BufferTooSmall).</param>
    /// <param name="cancellationToken">Ends the wait with <see cref="OperationCanceledException"/>.</param>
    /// <returns>Success; <see cref="SharedMessageQueueResult.BufferTooSmall"/> when the message is longer than the buffer
    /// (it stays queued); or Detached.</returns>
    public SharedMessageQueueResult Receive(Span<byte> buffer, out int length, CancellationToken cancellationToken = default) =>
        (SharedMessageQueueResult)_queue.Receive(buffer, out length, nowait: false, EngineLocks.Deadline.Infinite, cancellationToken);

    /// <summary>Receives the next message into <paramref name="buffer"/>, waiting at most <paramref name="timeout"/>.</summary>
    /// <param name="buffer">Where the message goes (<c>buffer[..length]</c>).</param>
    /// <param name="length">The message's length (also with BufferTooSmall).</param>
    /// <param name="timeout">The longest wait; <see cref="Timeout.InfiniteTimeSpan"/> for none.</param>
    /// <param name="cancellationToken">Ends the wait with <see cref="OperationCanceledException"/>.</param>
    /// <returns>Success, WouldBlock (timeout), BufferTooSmall or Detached.</returns>
    public SharedMessageQueueResult Receive(Span<byte> buffer, out int length, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        (SharedMessageQueueResult)_queue.Receive(buffer, out length, nowait: false, DeadlineAfter(timeout), cancellationToken);

    /// <summary>Receives the next message into <paramref name="buffer"/> if it is complete in the ring, without
    /// waiting.</summary>
    /// <param name="buffer">Where the message goes (<c>buffer[..length]</c>).</param>
    /// <param name="length">The message's length (also with BufferTooSmall).</param>
    /// <returns>Success, WouldBlock, BufferTooSmall or Detached.</returns>
    public SharedMessageQueueResult TryReceive(Span<byte> buffer, out int length) =>
        (SharedMessageQueueResult)_queue.Receive(buffer, out length, nowait: true, EngineLocks.Deadline.Infinite, default);

    /// <summary>Detaches this end (PostgreSQL's shm_mq_detach): the peer's operations return
    /// <see cref="SharedMessageQueueResult.Detached"/> (a receiver after the messages already complete), and so do
    /// this process's, including waits in progress on other threads. The segment stays attached. Idempotent. A queue
    /// object that took no role detaches only itself.</summary>
    public void Detach() => _queue.Detach();

    /// <summary>Detaches the queue (<see cref="Detach"/>) and, for a queue that made its own mapping
    /// (<see cref="Create"/>, <see cref="Attach(DynamicSharedMemory, DsmHandle)"/>), its segment. Idempotent.</summary>
    public void Dispose()
    {
        if (_segment is not null && _onDetach is not null)
            _segment.Inner.CancelOnDetach(_onDetach);
        _queue.Detach();
        if (_ownsSegment)
            _segment!.Dispose();
    }

    /// <summary>"shared message queue (ring of N bytes)", with its segment when it has one.</summary>
    public override string ToString() => _segment is null ? _queue.ToString() : $"{_queue} in {_segment}";

    private static void CheckAttached(DsmSegment segment)
    {
        ArgumentNullException.ThrowIfNull(segment);
        if (!segment.IsAttached)
            throw new InvalidOperationException($"{segment} is not attached");
    }

    private static long DeadlineAfter(TimeSpan timeout)
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "a queue timeout must be zero, positive or infinite");
        return EngineLocks.Deadline.After(timeout);
    }
}
