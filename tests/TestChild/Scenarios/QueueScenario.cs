using Postmaster.Workers;

namespace Postmaster.TestChild.Scenarios;

/// <summary>
/// queue: a backend-like process at one end of a shared message queue, through the worker SDK
/// (<see cref="SharedMessageQueue"/>). Opens the test's instance like "dsm" (<see cref="DsmChildContext"/>:
/// datadir=DIR key=K id=I type=posix|sysv|mmap slot=N), prints "ready", then runs commands from stdin, one per line:
/// <code>
/// attach HANDLE sender|receiver → attached HANDLE RING (the queue in segment HANDLE, role taken)
/// send-mixed N SEED             → sent N | result R at I       (N messages of every size class, see below)
/// receive-mixed N SEED          → received N | result R at I | mismatch at I
/// send-partial SIZE             → partial BYTES                (one message of SIZE bytes begun without waiting:
///                                                                 it fills the ring and stays unfinished)
/// receive-one                   → result R LENGTH
/// exit                          → bye (the queue and every segment detached, as the exit path does)
/// </code>
/// Message I of a run with seed S is <c>new Random(S + I)</c>'s bytes, its size the ring's size classes in turn
/// (0, 1, 7, 8, 9, ring-1, ring, ring+1, 10 × ring, 1 MiB): the same as the tests' QueueMessages.
/// A command that fails answers "error MESSAGE" and the loop goes on.
/// </summary>
internal static class QueueScenario
{
    private const int OneMiB = 1024 * 1024;

    public static int Run(ScenarioArgs args)
    {
        using var child = DsmChildContext.Open(args);
        var dsm = new DynamicSharedMemory(child.Dsm);
        SharedMessageQueue? queue = null;
        Console.WriteLine($"ready slot={child.Owner.Slot}");
        while (Console.ReadLine() is { } line)
        {
            var w = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (w.Length == 0)
                continue;
            try
            {
                switch (w[0])
                {
                    case "attach":
                        queue = SharedMessageQueue.Attach(dsm, DsmHandle.Parse(w[1]))
                                ?? throw new InvalidOperationException($"segment {w[1]} is gone");
                        if (w[2] == "sender")
                            queue.SetSender();
                        else
                            queue.SetReceiver();
                        Console.WriteLine($"attached {w[1]} {queue.RingSize}");
                        break;
                    case "send-mixed":
                        Console.WriteLine(SendMixed(Need(queue), int.Parse(w[1]), int.Parse(w[2])));
                        break;
                    case "receive-mixed":
                        Console.WriteLine(ReceiveMixed(Need(queue), int.Parse(w[1]), int.Parse(w[2])));
                        break;
                    case "send-partial":
                        var r = Need(queue).TrySend(new byte[int.Parse(w[1])]);
                        Console.WriteLine(r == SharedMessageQueueResult.WouldBlock ? $"partial {Need(queue).RingSize}" : $"result {r}");
                        break;
                    case "receive-one":
                        var got = Need(queue).Receive(out var message);
                        Console.WriteLine($"result {got} {message.Length}");
                        break;
                    case "exit":
                        queue?.Dispose();
                        child.Dsm.DetachAll();
                        Console.WriteLine("bye");
                        return 0;
                    default:
                        throw new ArgumentException($"unknown command \"{w[0]}\"");
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Console.WriteLine($"error {e.Message}");
            }
        }
        return 1; // stdin closed without "exit"
    }

    private static SharedMessageQueue Need(SharedMessageQueue? queue) =>
        queue ?? throw new InvalidOperationException("no queue attached (attach HANDLE sender|receiver first)");

    private static string SendMixed(SharedMessageQueue queue, int count, int seed)
    {
        for (int i = 0; i < count; i++)
        {
            var r = queue.Send(Make(seed, i, MixedSize(queue.RingSize, i)));
            if (r != SharedMessageQueueResult.Success)
                return $"result {r} at {i}";
        }
        return $"sent {count}";
    }

    private static string ReceiveMixed(SharedMessageQueue queue, int count, int seed)
    {
        for (int i = 0; i < count; i++)
        {
            var r = queue.Receive(out var message);
            if (r != SharedMessageQueueResult.Success)
                return $"result {r} at {i}";
            if (!message.AsSpan().SequenceEqual(Make(seed, i, MixedSize(queue.RingSize, i))))
                return $"mismatch at {i}";
        }
        return $"received {count}";
    }

    private static byte[] Make(int seed, int index, int size)
    {
        var bytes = new byte[size];
        new Random(seed + index).NextBytes(bytes);
        return bytes;
    }

    private static int MixedSize(long ring, int index)
    {
        int[] classes = [0, 1, 7, 8, 9, (int)ring - 1, (int)ring, (int)ring + 1, 10 * (int)ring, OneMiB];
        return classes[index % classes.Length];
    }
}
