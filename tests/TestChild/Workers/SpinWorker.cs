using System.Diagnostics;
using Postmaster.Workers;

namespace Postmaster.TestChild.Workers;

/// <summary>CPU load without log traffic, for the logging bench's control row (argument: seconds): spins that long,
/// then waits to be stopped.</summary>
public sealed class SpinWorker : IBackgroundWorker
{
    public int Run(WorkerContext context)
    {
        var until = Stopwatch.GetTimestamp() + (long)(double.Parse(context.Argument, System.Globalization.CultureInfo.InvariantCulture) * Stopwatch.Frequency);
        long spins = 0;
        while (Stopwatch.GetTimestamp() < until)
            spins++;
        GC.KeepAlive(spins);
        context.WaitUntilStopping(Timeout.InfiniteTimeSpan);
        return 0;
    }
}
