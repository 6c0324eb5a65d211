using Postmaster.Workers;

namespace Postmaster.TestChild.Workers;

/// <summary>
/// The shape of PostgreSQL's parallel query, as a user worker (worker.NAME.entry =
/// '.../TestChild.dll:Postmaster.TestChild.Workers.QueueLeaderWorker', argument 'COUNT:MODE'): creates a shared
/// message queue, becomes its receiver, starts a <see cref="QueueSenderWorker"/> as a dynamic worker with the queue's
/// handle in its argument, expects it as the peer, and receives until the queue says Detached. Then it logs
/// "queue leader received N messages (B bytes, all intact|some damaged) from worker PID, then RESULT", disposes the
/// queue (its segment goes) and logs "queue leader released its queue", and waits to be stopped.
/// </summary>
public sealed class QueueLeaderWorker : IBackgroundWorker
{
    public const int RingSize = 4096;

    public int Run(WorkerContext context)
    {
        var parts = context.Argument.Split(':');
        int count = int.Parse(parts[0]);
        string mode = parts[1];
        var queue = SharedMessageQueue.Create(context.Dsm, RingSize);
        queue.SetReceiver();
        string entry = $"{typeof(QueueSenderWorker).Assembly.Location}:{typeof(QueueSenderWorker).FullName}";
        var sender = context.StartDynamicWorker("queue-sender", entry, $"{queue.Handle}:{count}:{mode}", TimeSpan.FromSeconds(60));
        queue.ExpectPeer(sender);
        int received = 0;
        long bytes = 0;
        bool intact = true;
        SharedMessageQueueResult result;
        while ((result = queue.Receive(out var message, context.Stopping)) == SharedMessageQueueResult.Success)
        {
            intact &= message.AsSpan().SequenceEqual(QueueSenderWorker.Message(received));
            received++;
            bytes += message.Length;
        }
        context.Log($"queue leader received {received} messages ({bytes} bytes, {(intact ? "all intact" : "some damaged")}) " +
                    $"from worker {sender.Pid}, then {result}");
        queue.Dispose();
        context.Log("queue leader released its queue");
        context.WaitUntilStopping(Timeout.InfiniteTimeSpan);
        return 0;
    }
}

/// <summary>
/// The dynamic worker <see cref="QueueLeaderWorker"/> starts (argument 'HANDLE:COUNT:MODE'): attaches the queue in
/// segment HANDLE, becomes its sender and sends COUNT messages (<see cref="Message"/>), then logs "queue sender sent
/// COUNT messages" and exits (its exit path detaches the queue). MODE stall: after the messages it begins one more of
/// 100000 bytes without waiting (the ring fills, the message stays unfinished), logs "queue sender stalled
/// mid-message" and waits to be stopped or killed.
/// </summary>
public sealed class QueueSenderWorker : IBackgroundWorker
{
    /// <summary>Message <paramref name="index"/>: up to about 20 kB of random bytes from <c>new Random(index)</c>.</summary>
    public static byte[] Message(int index)
    {
        var bytes = new byte[index * 997 % 20_000];
        new Random(index).NextBytes(bytes);
        return bytes;
    }

    public int Run(WorkerContext context)
    {
        var parts = context.Argument.Split(':');
        var queue = SharedMessageQueue.Attach(context.Dsm, DsmHandle.Parse(parts[0]))
                    ?? throw new InvalidOperationException($"the queue's segment {parts[0]} is gone");
        queue.SetSender();
        int count = int.Parse(parts[1]);
        for (int i = 0; i < count; i++)
        {
            if (queue.Send(Message(i), context.Stopping) != SharedMessageQueueResult.Success)
            {
                context.Log($"queue sender: the receiver detached after {i} messages");
                return 0;
            }
        }
        if (parts[2] == "stall")
        {
            queue.TrySend(new byte[100_000]);
            context.Log("queue sender stalled mid-message");
            context.WaitUntilStopping(Timeout.InfiniteTimeSpan);
            return 0;
        }
        context.Log($"queue sender sent {count} messages");
        return 0; // the queue is detached by the exit path (its segment's on-detach callback)
    }
}
