using System.Diagnostics;
using Postmaster.Workers;

namespace Postmaster.TestChild.Workers;

/// <summary>Bench-only: <see cref="StampWorker"/> as an <see cref="IAsyncBackgroundWorker"/> (an async state machine that
/// reads the clock first thing, then does the same work), for the cold and pool start of an async worker next to a
/// synchronous one.</summary>
public sealed class AsyncStampWorker : IAsyncBackgroundWorker
{
    public async Task<int> RunAsync(WorkerContext context, CancellationToken stopping)
    {
        long started = Stopwatch.GetTimestamp();
        string argument = context.Argument;
        int colon = argument.IndexOf(':');
        if (colon <= 0)
            throw new ArgumentException($"stamp worker: argument \"{argument}\" is not \"exit:DIR\" or \"stay:DIR\"");
        string mode = argument[..colon], dir = argument[(colon + 1)..];
        string path = Path.Combine(dir, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await File.WriteAllTextAsync(path + ".tmp", started.ToString(System.Globalization.CultureInfo.InvariantCulture), stopping);
        File.Move(path + ".tmp", path);
        if (mode == "exit")
            return 0;
        await Task.Delay(Timeout.Infinite, stopping).ContinueWith(_ => { }, TaskScheduler.Default);
        return 1;
    }
}
