using Postmaster.Shmem.Locks;

namespace Postmaster.TestChild.Scenarios;

/// <summary>
/// lock-hold: acquires the locks at locks=OFF1,OFF2,... in modes=X,S,... (X = exclusive, S = shared), prints
/// "holding", then waits for a line on stdin: "exit" returns normally, so the exit path (LockOwner.Dispose, i.e.
/// ReleaseAll) releases everything. The test may instead kill it while it holds the locks.
/// </summary>
internal static class LockHoldScenario
{
    public static int Run(ScenarioArgs args)
    {
        using var ctx = LockChildContext.Attach(args);
        var offsets = args.List("locks");
        var modes = args.List("modes");
        if (offsets.Count != modes.Count)
            throw new ArgumentException("locks= and modes= must have the same number of items");
        for (int i = 0; i < offsets.Count; i++)
        {
            var mode = modes[i] switch
            {
                "X" => LWLockMode.Exclusive,
                "S" => LWLockMode.Shared,
                var m => throw new ArgumentException($"mode {m} is neither X nor S"),
            };
            ctx.Owner.Acquire(ctx.Segment.Lock(long.Parse(offsets[i])), mode);
        }
        Console.WriteLine($"holding {ctx.Owner.HeldCount}");
        return Console.ReadLine() == "exit" ? 0 : 1;
    }
}
