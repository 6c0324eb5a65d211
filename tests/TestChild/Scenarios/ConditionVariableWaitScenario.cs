using Postmaster.Shmem.Locks;

namespace Postmaster.TestChild.Scenarios;

/// <summary>
/// cv-wait: takes lock=OFFSET exclusively, prints "waiting", and waits on the condition variable at cv=OFFSET until
/// the 64-bit value at value=OFFSET reaches target=N (bounded by timeout-ms=T). Prints "woken=True|False value=V".
/// </summary>
internal static class ConditionVariableWaitScenario
{
    public static int Run(ScenarioArgs args)
    {
        using var ctx = LockChildContext.Attach(args);
        var lwlock = ctx.Lock(args);
        var region = ctx.Region;
        long valueOffset = args.Long("value");
        long target = args.Long("target");
        ctx.Owner.Acquire(lwlock, LWLockMode.Exclusive);
        Console.WriteLine("waiting");
        bool woken = region.Ref<SharedConditionVariable>(args.Long("cv")).Wait(ctx.Owner, lwlock,
            () => Volatile.Read(ref region.Ref<long>(valueOffset)) >= target, TimeSpan.FromMilliseconds(args.Long("timeout-ms")));
        Console.WriteLine($"woken={woken} value={Volatile.Read(ref region.Ref<long>(valueOffset))}");
        ctx.Owner.Release(lwlock);
        return 0;
    }
}
