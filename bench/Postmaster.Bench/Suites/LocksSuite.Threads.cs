using System.Diagnostics;
using System.Runtime.CompilerServices;
using Postmaster.Shmem.Locks;

namespace Postmaster.Bench.Suites;

/// <summary>Threads of one process sharing its lock owner: (1) two threads each on its own lock (the owner's record is
/// shared, its entries are not) against two threads each CAS+Add-ing its own word; (2) two threads on one lock against a
/// bare CAS spinlock between the same two threads.</summary>
public sealed partial class LocksSuite
{
    private const int ThreadOps = 10_000_000;

    private static void MeasureThreads(LockBenchSegment seg, BenchTable table)
    {
        using var owner = seg.Owners.CreateOwner(LockBenchSegment.ParentSlot, seg.Tranches);
        var own0 = seg.Lock(1);
        var own1 = seg.Lock(2);
        var same = seg.Lock(3);
        var results = new List<double>[4];
        for (int k = 0; k < results.Length; k++)
            results[k] = new List<double>();
        for (int run = 0; run <= Measure.Runs; run++) // run 0 warms up
        {
            double[] r =
            [
                Twice(() => RawCasAtomic(ref seg.Int(LockBenchSegment.Word.Thread0), ThreadOps),
                      () => RawCasAtomic(ref seg.Int(LockBenchSegment.Word.Thread1), ThreadOps)),
                Twice(() => OursExclusive(owner, own0, ThreadOps), () => OursExclusive(owner, own1, ThreadOps)),
                Twice(() => RawSpin(ref seg.Int(LockBenchSegment.Word.Thread0), ThreadOps / 10),
                      () => RawSpin(ref seg.Int(LockBenchSegment.Word.Thread0), ThreadOps / 10)),
                Twice(() => OursExclusive(owner, same, ThreadOps / 10), () => OursExclusive(owner, same, ThreadOps / 10)),
            ];
            if (run > 0)
                for (int k = 0; k < r.Length; k++)
                    results[k].Add(r[k]);
        }
        double[] ms = results.Select(x => x.Order().ElementAt(x.Count / 2)).ToArray();
        table.AddTime("2 threads, one owner, each its own lock: Acquire+Release", "2 threads, CAS + Interlocked.Add each",
            ms[0] * 1e6 / ThreadOps, ms[1] * 1e6 / ThreadOps, "ns", "≤ 3×");
        table.AddThroughput("2 threads, one owner, one lock (exclusive)", "2 threads, CAS spinlock",
            2.0 * ThreadOps / 10 / (ms[2] / 1000), 2.0 * ThreadOps / 10 / (ms[3] / 1000), "report");
    }

    /// <summary>Runs both on their own threads at once; wall milliseconds. A failure on either thread is rethrown here,
    /// so the suite's segment is still removed (an exception escaping a thread would end the process on the spot).</summary>
    private static double Twice(Action a, Action b)
    {
        using var go = new ManualResetEventSlim();
        Exception? failed = null;
        Thread Start(Action body)
        {
            var t = new Thread(() =>
            {
                go.Wait();
                try
                {
                    body();
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref failed, e, null);
                }
            });
            t.Start();
            return t;
        }
        var ta = Start(a);
        var tb = Start(b);
        var sw = Stopwatch.StartNew();
        go.Set();
        ta.Join();
        tb.Join();
        if (failed is not null)
            throw new InvalidOperationException("a measuring thread failed", failed);
        return sw.Elapsed.TotalMilliseconds;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RawSpin(ref int word, int n)
    {
        for (int i = 0; i < n; i++)
        {
            while (Interlocked.CompareExchange(ref word, 1, 0) != 0)
                Thread.SpinWait(1);
            Interlocked.Add(ref word, -1);
        }
    }
}
