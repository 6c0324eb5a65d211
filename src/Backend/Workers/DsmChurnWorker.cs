using Postmaster.Workers;

namespace Postmaster.Backend.Workers;

/// <summary>
/// "dsm-churn": argument "ITERATIONS". Creates, publishes, attaches (other churners' segments) and detaches small
/// DSM segments at random, keeping at most <see cref="MaxHeld"/> attached; then logs "dsm churn done" and idles with
/// what it holds until stopped. The crash-recovery soak test kills churners at random moments and then checks that
/// every segment's reference count equals its real attachments.
/// </summary>
internal sealed class DsmChurnWorker : IBackgroundWorker
{
    public const int MaxHeld = 8;
    public const int SegmentSize = 16 * 1024;
    private const int RingSize = 64;

    public int Run(WorkerContext context)
    {
        if (!int.TryParse(context.Argument, out int iterations) || iterations < 0)
            throw new ArgumentException($"invalid argument \"{context.Argument}\" for worker \"dsm-churn\": expected ITERATIONS");
        var ring = context.InitStruct("dsm churn handles", sizeof(long) * (RingSize + 1), out _);
        var lk = context.NamedLock("dsm churn");
        var held = new List<DsmSegment>();
        var rnd = new Random(Environment.ProcessId);
        for (int i = 0; i < iterations && !context.Stopping.IsCancellationRequested; i++)
        {
            switch (rnd.Next(3))
            {
                case 0:
                    if (context.Dsm.Create(SegmentSize, DsmCreateFlags.NullIfMaxSegments) is { } created)
                    {
                        held.Add(created);
                        Publish(context, lk, ring, created.Handle);
                    }
                    break;
                case 1:
                    var h = Pick(context, lk, ring, rnd);
                    if (h.IsValid && context.Dsm.FindMapping(h) is null && context.Dsm.Attach(h) is { } attached)
                        held.Add(attached);
                    break;
                default:
                    if (held.Count > 0)
                    {
                        int k = rnd.Next(held.Count);
                        context.Dsm.Detach(held[k]);
                        held.RemoveAt(k);
                    }
                    break;
            }
            while (held.Count > MaxHeld)
            {
                context.Dsm.Detach(held[0]);
                held.RemoveAt(0);
            }
        }
        context.Log($"dsm churn done, holding {held.Count} segments");
        context.WaitUntilStopping(Timeout.InfiniteTimeSpan);
        return 1;
    }

    private static void Publish(WorkerContext context, LWLockHandle lk, ShmemRegion ring, DsmHandle handle)
    {
        using var held = context.Locks.Hold(lk, LWLockMode.Exclusive);
        long next = ring.Ref<long>(0)++;
        ring.Ref<long>(sizeof(long) * (1 + next % RingSize)) = handle.Value;
    }

    private static DsmHandle Pick(WorkerContext context, LWLockHandle lk, ShmemRegion ring, Random rnd)
    {
        using var held = context.Locks.Hold(lk, LWLockMode.Shared);
        return new DsmHandle((uint)ring.Ref<long>(sizeof(long) * (1 + rnd.Next(RingSize))));
    }
}
