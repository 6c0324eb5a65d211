using Postmaster.Workers;

namespace Postmaster.TestChild.Workers;

/// <summary>
/// An async user worker (worker.NAME.entry = '.../TestChild.dll:Postmaster.TestChild.Workers.AsyncWorker'). Each
/// argument first awaits (so what follows runs on a thread-pool thread, not the backend's main thread): "done" logs
/// "async worker NAME is done" and returns 0; "throw" throws <see cref="InvalidOperationException"/>; "wait" logs
/// "async worker NAME is waiting" and waits on the stopping token, whose cancellation ends it.
/// </summary>
public sealed class AsyncWorker : IAsyncBackgroundWorker
{
    public async Task<int> RunAsync(WorkerContext context, CancellationToken stopping)
    {
        await Task.Yield();
        switch (context.Argument)
        {
            case "done":
                context.Log($"async worker \"{context.Name}\" is done");
                return 0;
            case "throw":
                throw new InvalidOperationException("async worker failed after an await");
            case "wait":
                context.Log($"async worker \"{context.Name}\" is waiting");
                await Task.Delay(Timeout.Infinite, stopping);
                return 1;
            default:
                throw new ArgumentException($"async worker: argument \"{context.Argument}\" is not done, throw or wait");
        }
    }
}

/// <summary>Implements both worker interfaces: refused, since which one would run is not obvious.</summary>
public sealed class TwoFacedWorker : IBackgroundWorker, IAsyncBackgroundWorker
{
    public int Run(WorkerContext context) => 0;

    public Task<int> RunAsync(WorkerContext context, CancellationToken stopping) => Task.FromResult(0);
}
