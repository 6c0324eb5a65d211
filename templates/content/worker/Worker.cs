using Postmaster.Workers;

namespace MyWorker;

/// <summary>
/// A background worker. Run it as a static worker by adding to the instance's postmaster.conf:
/// <code>
/// worker.myworker.entry = '/path/to/bin/Release/net10.0/MyWorker.dll:MyWorker.Worker'
/// </code>
/// then <c>postmaster reload -D DATADIR</c> (or start the server). Return 0 when the work is done (never restarted),
/// 1 to be restarted per <c>worker.myworker.restart</c>; stop promptly when <paramref name="stopping"/> fires.
/// </summary>
public sealed class Worker : IAsyncBackgroundWorker
{
    public async Task<int> RunAsync(WorkerContext context, CancellationToken stopping)
    {
        // A lock and a counter in shared memory, both known by name to every process of the instance.
        var counterLock = context.NamedLock("MyWorker counter");
        var counter = context.InitStruct("MyWorker counter", sizeof(long), out _);
        while (!stopping.IsCancellationRequested)
        {
            long value;
            using (context.Locks.Hold(counterLock, LWLockMode.Exclusive))
                value = ++counter.Ref<long>(0);
            context.Log($"MyWorker ran {value} times");
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(10), stopping);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        return 1;
    }
}
