using System.Globalization;
using Postmaster.Workers;

namespace Postmaster.TestChild.Workers;

/// <summary>Logs what globalization the backend has: "culture de-DE: decimal separator ','" with ICU, or "culture
/// de-DE: CultureNotFoundException" under invariant globalization; then exits 0 (with argument "wait": waits until
/// stopped, for memory measurements).</summary>
public sealed class CultureWorker : IBackgroundWorker
{
    public int Run(WorkerContext context)
    {
        try
        {
            var de = CultureInfo.GetCultureInfo("de-DE");
            context.Log($"culture de-DE: decimal separator '{de.NumberFormat.NumberDecimalSeparator}'");
        }
        catch (CultureNotFoundException e)
        {
            context.Log($"culture de-DE: {e.GetType().Name}");
        }
        if (context.Argument == "wait")
            context.WaitUntilStopping(Timeout.InfiniteTimeSpan);
        return 0;
    }
}
