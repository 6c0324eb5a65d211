using System.Diagnostics;
using System.Runtime.CompilerServices;
using Postmaster.Shmem.Locks;
using Word = Postmaster.Bench.Suites.LockBenchSegment.Word;

namespace Postmaster.Bench.Suites;

/// <summary>The two-process measurements of <see cref="LocksSuite"/>: the parent side here, the child side in
/// <see cref="RunChild"/> (this executable re-invoked by <see cref="BenchChild"/>).</summary>
public sealed partial class LocksSuite
{
    private const int TurnParent = 0;
    private const int TurnChild = 1;
    private const int TurnStop = 2;

    /// <summary>Locks in the hand-off ring: with two processes chasing each other round three locks, each step's
    /// acquire waits for the other process's release, and no cycle (deadlock) is possible.</summary>
    private const int RingLocks = 3;

    private enum ThroughputMode
    {
        RawSpinLock,
        RawShared,
        Exclusive,
        Shared,
    }

    private static int TotalRuns => Measure.Runs + 1; // plus the warm-up

    /// <summary>The two lock rings: locks 0..2 (spinning allowed, as shipped) and 4..6 (sleep path only).</summary>
    private const int SpinRingBase = 0;
    private const int SleepRingBase = 4;

    /// <summary>Child: <c>pingpong-futex SEG | pingpong-lock SEG BASE SPIN | throughput SEG MODE</c>.</summary>
    public int RunChild(string[] args)
    {
        using var seg = LockBenchSegment.Attach(args[1]);
        switch (args[0])
        {
            case "pingpong-futex":
                ChildFutexPingPong(seg);
                return 0;
            case "pingpong-lock":
                ChildLockRing(seg, int.Parse(args[2]), bool.Parse(args[3]));
                return 0;
            case "throughput":
                ChildThroughput(seg, Enum.Parse<ThroughputMode>(args[2]));
                return 0;
            default:
                Console.Error.WriteLine($"unknown locks child role {args[0]}");
                return 2;
        }
    }

    /// <summary>All three children run at once and the runs alternate (raw, ours, ours without spinning, raw...), so
    /// that drift in the machine's load (it is shared) affects every variant alike; idle children sleep in the kernel.
    /// Every child is pinned to the other CPU, so each hand-off is a cross-core one.</summary>
    private static void MeasureHandOff(LockBenchSegment seg, BenchTable table)
    {
        Volatile.Write(ref seg.Int(Word.Turn), TurnParent);
        using var spinOwner = seg.Owners.CreateOwner(LockBenchSegment.ParentSlot, seg.Tranches);
        using var sleepOwner = seg.Owners.CreateOwner(LockBenchSegment.SecondParentSlot, seg.Tranches);
        sleepOwner.SpinBeforeSleep = false;
        // In each ring the parent starts on the ring's first lock and the child on the second.
        spinOwner.Acquire(seg.Lock(SpinRingBase), LWLockMode.Exclusive);
        sleepOwner.Acquire(seg.Lock(SleepRingBase), LWLockMode.Exclusive);
        using var futexChild = BenchChild.Start("locks", "pingpong-futex", seg.Name);
        using var spinChild = BenchChild.Start("locks", "pingpong-lock", seg.Name, $"{SpinRingBase}", "true");
        using var sleepChild = BenchChild.Start("locks", "pingpong-lock", seg.Name, $"{SleepRingBase}", "false");
        futexChild.WaitForLine("ready");
        spinChild.WaitForLine("ready");
        sleepChild.WaitForLine("ready");

        List<double> futex = [], spinRing = [], sleepRing = [];
        int spinPosition = 0, sleepPosition = 0;
        for (int run = 0; run < TotalRuns; run++)
        {
            futex.Add(MicrosecondsPer(RoundTrips, () => ParentFutexRoundTrips(seg, RoundTrips)));
            spinRing.Add(MicrosecondsPer(RoundTrips,
                () => spinPosition = RingSteps(seg, spinOwner, SpinRingBase, spinPosition, RoundTrips)));
            sleepRing.Add(MicrosecondsPer(RoundTrips,
                () => sleepPosition = RingSteps(seg, sleepOwner, SleepRingBase, sleepPosition, RoundTrips)));
        }
        Volatile.Write(ref seg.Int(Word.Turn), TurnStop);
        Futex.Wake(ref seg.Int(Word.Turn), 1);
        spinOwner.ReleaseAll();
        sleepOwner.ReleaseAll();
        futexChild.WaitForExit();
        spinChild.WaitForExit();
        sleepChild.WaitForExit();
        double raw = MedianAfterWarmUp(futex);
        table.AddTime("Two-process lock hand-off, cross-core (round trip)", "raw futex ping-pong", raw,
            MedianAfterWarmUp(spinRing), "µs", "≤ 1.5×");
        table.AddTime("Same, waiter never spins (pure futex sleep path)", "raw futex ping-pong", raw,
            MedianAfterWarmUp(sleepRing), "µs", "≤ 1.5×");
    }

    private static double MedianAfterWarmUp(List<double> runs)
    {
        var measured = runs.Skip(1).Order().ToList();
        return measured[measured.Count / 2];
    }

    private static void ParentFutexRoundTrips(LockBenchSegment seg, int count)
    {
        ref int turn = ref seg.Int(Word.Turn);
        for (int i = 0; i < count; i++)
        {
            Volatile.Write(ref turn, TurnChild);
            Futex.Wake(ref turn, 1);
            while (Volatile.Read(ref turn) == TurnChild)
                Futex.Wait(ref turn, TurnChild, Deadline.Infinite);
        }
    }

    private static void ChildFutexPingPong(LockBenchSegment seg)
    {
        ref int turn = ref seg.Int(Word.Turn);
        Console.WriteLine("ready");
        while (true)
        {
            int t;
            while ((t = Volatile.Read(ref turn)) == TurnParent)
                Futex.Wait(ref turn, TurnParent, Deadline.Infinite);
            if (t == TurnStop)
                return;
            Volatile.Write(ref turn, TurnParent);
            Futex.Wake(ref turn, 1);
        }
    }

    /// <summary>Holding lock <paramref name="position"/> of the ring starting at lock <paramref name="ringBase"/>,
    /// takes the next lock of the ring and releases the held one, <paramref name="steps"/> times; returns the new
    /// position.</summary>
    private static int RingSteps(LockBenchSegment seg, LockOwner owner, int ringBase, int position, int steps)
    {
        for (int i = 0; i < steps; i++)
        {
            int next = (position + 1) % RingLocks;
            owner.Acquire(seg.Lock(ringBase + next), LWLockMode.Exclusive);
            owner.Release(seg.Lock(ringBase + position));
            position = next;
        }
        return position;
    }

    private static void ChildLockRing(LockBenchSegment seg, int ringBase, bool spin)
    {
        int slot = ringBase == SpinRingBase ? LockBenchSegment.ChildSlot : LockBenchSegment.SecondChildSlot;
        using var owner = seg.Owners.CreateOwner(slot, seg.Tranches);
        owner.SpinBeforeSleep = spin;
        owner.Acquire(seg.Lock(ringBase + 1), LWLockMode.Exclusive);
        Console.WriteLine("ready");
        RingSteps(seg, owner, ringBase, 1, RoundTrips * TotalRuns);
        // Dispose releases the last lock held, which lets the parent finish its last step.
    }

    private static void MeasureThroughput(LockBenchSegment seg, BenchTable table)
    {
        var results = new Dictionary<ThroughputMode, double>();
        foreach (var mode in Enum.GetValues<ThroughputMode>())
        {
            Volatile.Write(ref seg.Int(Word.Generation), 0);
            Volatile.Write(ref seg.Int(Word.Stop), 0);
            Volatile.Write(ref seg.Int(Word.ChildDone), 0);
            using var owner = seg.Owners.CreateOwner(LockBenchSegment.ParentSlot, seg.Tranches);
            using var child = BenchChild.Start("locks", "throughput", seg.Name, mode.ToString());
            child.WaitForLine("ready");
            int round = 0;
            results[mode] = Measure.Median(() => ThroughputRound(seg, owner, mode, ++round));
            child.WaitForExit();
        }
        table.AddThroughput("2 processes × shared Acquire+Release", "Interlocked inc+dec", results[ThroughputMode.RawShared],
            results[ThroughputMode.Shared], "report");
        table.AddThroughput("2 processes × exclusive Acquire+Release", "CAS spinlock", results[ThroughputMode.RawSpinLock],
            results[ThroughputMode.Exclusive], "report");
    }

    /// <summary>One round: both processes loop for <see cref="ThroughputRoundLength"/>; returns their total ops/s.</summary>
    private static double ThroughputRound(LockBenchSegment seg, LockOwner owner, ThroughputMode mode, int round)
    {
        Volatile.Write(ref seg.Int(Word.Generation), round);
        Futex.Wake(ref seg.Int(Word.Generation), 1);
        var sw = Stopwatch.StartNew();
        long deadline = Stopwatch.GetTimestamp() + (long)(ThroughputRoundLength.TotalSeconds * Stopwatch.Frequency);
        long ops = Loop(seg, owner, mode, round, deadline);
        Volatile.Write(ref seg.Int(Word.Stop), round);
        double seconds = sw.Elapsed.TotalSeconds;
        ref int done = ref seg.Int(Word.ChildDone);
        int seen;
        while ((seen = Volatile.Read(ref done)) < round)
            Futex.Wait(ref done, seen, Deadline.Infinite);
        return (ops + Volatile.Read(ref seg.Long(Word.ChildOps))) / seconds;
    }

    private static void ChildThroughput(LockBenchSegment seg, ThroughputMode mode)
    {
        using var owner = seg.Owners.CreateOwner(LockBenchSegment.ChildSlot, seg.Tranches);
        Console.WriteLine("ready");
        ref int generation = ref seg.Int(Word.Generation);
        for (int round = 1; round <= TotalRuns; round++)
        {
            int g;
            while ((g = Volatile.Read(ref generation)) < round)
                Futex.Wait(ref generation, g, Deadline.Infinite);
            long ops = Loop(seg, owner, mode, round, long.MaxValue);
            Volatile.Write(ref seg.Long(Word.ChildOps), ops);
            Volatile.Write(ref seg.Int(Word.ChildDone), round);
            Futex.Wake(ref seg.Int(Word.ChildDone), 1);
        }
    }

    /// <summary>Acquire+release in <paramref name="mode"/> until the Stop word reaches <paramref name="round"/> or
    /// the clock reaches <paramref name="deadline"/> (checked every 64 operations); returns the operation count.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static long Loop(LockBenchSegment seg, LockOwner owner, ThroughputMode mode, int round, long deadline)
    {
        ref int raw = ref seg.Int(Word.Raw);
        ref int stop = ref seg.Int(Word.Stop);
        var lwlock = seg.Lock(0);
        long ops = 0;
        while (true)
        {
            for (int i = 0; i < 64; i++)
            {
                switch (mode)
                {
                    case ThroughputMode.RawSpinLock:
                        while (Volatile.Read(ref raw) != 0 || Interlocked.CompareExchange(ref raw, 1, 0) != 0)
                            Thread.SpinWait(1);
                        Volatile.Write(ref raw, 0);
                        break;
                    case ThroughputMode.RawShared:
                        Interlocked.Increment(ref raw);
                        Interlocked.Decrement(ref raw);
                        break;
                    case ThroughputMode.Exclusive:
                        owner.Acquire(lwlock, LWLockMode.Exclusive);
                        owner.Release(lwlock);
                        break;
                    case ThroughputMode.Shared:
                        owner.Acquire(lwlock, LWLockMode.Shared);
                        owner.Release(lwlock);
                        break;
                }
            }
            ops += 64;
            if (Volatile.Read(ref stop) >= round || Stopwatch.GetTimestamp() >= deadline)
                return ops;
        }
    }

    private static double MicrosecondsPer(int count, Action body)
    {
        var sw = Stopwatch.StartNew();
        body();
        return sw.Elapsed.TotalMicroseconds / count;
    }
}
