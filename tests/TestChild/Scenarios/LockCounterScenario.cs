using Postmaster.Shmem.Locks;

namespace Postmaster.TestChild.Scenarios;

/// <summary>
/// lock-counter: after "ready" and a "go" line on stdin, increments the 64-bit counter at counter=OFFSET n=N times,
/// each time under the exclusive lock at lock=OFFSET, with a deliberately non-atomic read-modify-write. Prints "done".
/// </summary>
internal static class LockCounterScenario
{
    public static int Run(ScenarioArgs args)
    {
        using var ctx = LockChildContext.Attach(args);
        var lwlock = ctx.Lock(args);
        ref long counter = ref ctx.Region.Ref<long>(args.Long("counter"));
        long n = args.Long("n");
        Console.WriteLine("ready");
        if (Console.ReadLine() != "go")
            return 1;
        for (long i = 0; i < n; i++)
        {
            ctx.Owner.Acquire(lwlock, LWLockMode.Exclusive);
            long value = Volatile.Read(ref counter);
            Volatile.Write(ref counter, value + 1);
            ctx.Owner.Release(lwlock);
        }
        Console.WriteLine("done");
        return 0;
    }
}
