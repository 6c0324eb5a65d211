using System.Diagnostics;

namespace Postmaster.Tests.Support;

/// <summary>Condition waits bounded by <see cref="Timeouts.Default"/>. The condition is re-evaluated on a short
/// poll; the test never depends on how long anything takes, only on the condition becoming true in time.</summary>
public static class Wait
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(5);

    public static void Until(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? Timeouts.Default;
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > limit)
                throw new TimeoutException($"timed out after {limit.TotalSeconds:0}s waiting for {what}");
            Thread.Sleep(Poll);
        }
    }
}
