using Postmaster.Shmem.Locks;

namespace Postmaster.TestChild.Scenarios;

/// <summary>
/// lock-record: a record of fields=K 64-bit fields at record=OFFSET, guarded by lock=OFFSET. role=writer: n=N times,
/// under the exclusive lock, writes the same new value into every field one by one (yielding the CPU halfway, so a
/// reader without the lock would see a half-written record). role=reader: n=N times, under the shared lock, checks
/// that all fields are equal. Both wait for "go" after "ready"; the reader prints "violations=V reads=N".
/// </summary>
internal static class LockRecordScenario
{
    public static int Run(ScenarioArgs args)
    {
        using var ctx = LockChildContext.Attach(args);
        var lwlock = ctx.Lock(args);
        long offset = args.Long("record");
        int fields = args.Int("fields");
        long n = args.Long("n");
        bool writer = args.String("role") switch
        {
            "writer" => true,
            "reader" => false,
            var r => throw new ArgumentException($"role={r} is neither writer nor reader"),
        };
        Console.WriteLine("ready");
        if (Console.ReadLine() != "go")
            return 1;

        long violations = 0;
        for (long i = 1; i <= n; i++)
        {
            ctx.Owner.Acquire(lwlock, writer ? LWLockMode.Exclusive : LWLockMode.Shared);
            if (writer)
            {
                for (int f = 0; f < fields; f++)
                {
                    Volatile.Write(ref ctx.Region.Ref<long>(offset + f * sizeof(long)), i);
                    if (f == fields / 2 && i % 64 == 0)
                        Thread.Yield();
                }
            }
            else
            {
                long first = Volatile.Read(ref ctx.Region.Ref<long>(offset));
                for (int f = 1; f < fields; f++)
                    if (Volatile.Read(ref ctx.Region.Ref<long>(offset + f * sizeof(long))) != first)
                        violations++;
            }
            ctx.Owner.Release(lwlock);
        }
        Console.WriteLine(writer ? $"writes={n}" : $"violations={violations} reads={n}");
        return 0;
    }
}
