using Postmaster.Workers;

namespace SharedCounter;

/// <summary>
/// Adds to one counter shared by every process of the instance. The counter lives in a named DSM segment (the registry
/// creates and zeroes it exactly once, whichever worker comes first, and attaches it everywhere else); a named lock
/// serialises the updates. The argument is how many increments this process makes (default: until stopped). Each
/// process logs "counter worker done at N" and exits 0 (done, never restarted).
/// <para>Configure it with <c>worker.counter.entry = '/path/to/SharedCounter.dll:SharedCounter.CounterWorker'</c>,
/// <c>worker.counter.count = 3</c> and <c>worker.counter.argument = '1000'</c>.</para>
/// </summary>
public sealed class CounterWorker : IAsyncBackgroundWorker
{
    /// <summary>The registry name of the counter's segment.</summary>
    public const string SegmentName = "shared-counter";

    /// <summary>The name of the lock that protects the counter.</summary>
    public const string LockName = "shared counter";

    /// <inheritdoc />
    public async Task<int> RunAsync(WorkerContext context, CancellationToken stopping)
    {
        long increments = long.TryParse(context.Argument, out long n) && n > 0 ? n : long.MaxValue;
        var counterLock = context.NamedLock(LockName);
        var segment = context.Registry.GetNamedSegment(SegmentName, sizeof(long), region => region.Ref<long>(0) = 0, out bool found);
        context.Log($"counter worker {(found ? "attached" : "created")} {segment}");

        long value = 0;
        for (long i = 0; i < increments && !stopping.IsCancellationRequested; i++)
        {
            using (context.Locks.Hold(counterLock, LWLockMode.Exclusive))
                value = ++segment.Region.Ref<long>(0);
            if (i % 1000 == 999)
            {
                // Between batches: give the other workers a turn, and show that a hold may be taken on one thread and
                // released on another (the continuation after an await may run anywhere in the thread pool).
                using var held = context.Locks.Hold(counterLock, LWLockMode.Shared);
                await Task.Yield();
            }
        }
        context.Log($"counter worker done at {value}");
        return 0;
    }
}
