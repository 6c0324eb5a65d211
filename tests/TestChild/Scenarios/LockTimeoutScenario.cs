using System.Diagnostics;
using Postmaster.Shmem.Locks;

namespace Postmaster.TestChild.Scenarios;

/// <summary>
/// lock-timeout: tries to acquire lock=OFFSET exclusively with a timeout of timeout-ms=N and prints
/// "acquired=True|False elapsed-ms=E held=H" (H = locks recorded afterwards).
/// </summary>
internal static class LockTimeoutScenario
{
    public static int Run(ScenarioArgs args)
    {
        using var ctx = LockChildContext.Attach(args);
        var lwlock = ctx.Lock(args);
        var timeout = TimeSpan.FromMilliseconds(args.Long("timeout-ms"));
        var sw = Stopwatch.StartNew();
        bool acquired = ctx.Owner.Acquire(lwlock, LWLockMode.Exclusive, timeout);
        long elapsed = sw.ElapsedMilliseconds;
        Console.WriteLine($"acquired={acquired} elapsed-ms={elapsed} held={ctx.Owner.HeldCount}");
        return 0;
    }
}
