using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Postmaster.Shmem.Area;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Registry;
using Postmaster.Shmem.Segments;

namespace Postmaster.Bench.Suites;

/// <summary>
/// Shared area and shared hash table against their in-process peers, measured in the same run: hash find and insert
/// (one process; and two processes on two cores against two threads of one process) against <c>Dictionary</c> under a
/// lock and <c>ConcurrentDictionary</c>, and area allocate + free against <c>NativeMemory.Alloc</c> + <c>Free</c>.
/// Keys and values are 8-byte integers; the tables hold <see cref="Keys"/> keys; finds are of random present keys.
/// </summary>
public sealed class AreaSuite : IBenchSuite
{
    private const int Keys = 100_000;
    private const int Operations = 2_000_000;
    private const string TableName = "bench-table";
    private static readonly TimeSpan TwoProcessRun = TimeSpan.FromSeconds(1);

    public string Name => "area";

    public string Description => "shared hash table find/insert vs Dictionary+lock and ConcurrentDictionary; area alloc+free vs NativeMemory";

    public void Run()
    {
        using var bench = new DsmSuite.BenchInstance(DsmType.Posix, mainRegion: 0);
        var registry = new DsmRegistry(bench.Instance, bench.A.Owner, bench.A);
        var table = registry.GetNamedHashTable(TableName, sizeof(long), sizeof(long), out _);
        var keys = RandomKeys(Keys, 1);
        foreach (long k in keys)
            table.Set(Bytes(k), Bytes(k * 3));
        var probes = RandomProbes(keys, Operations, 2);

        var dictionary = keys.ToDictionary(k => k, k => k * 3);
        var concurrent = new ConcurrentDictionary<long, long>(dictionary);
        var gate = new object();
        var t = new BenchTable();

        double[] find = Measure.NanosecondsPerOp(Operations,
            n => FindShared(table, probes, n),
            n => FindLocked(dictionary, gate, probes, n),
            n => FindConcurrent(concurrent, probes, n));
        t.AddTime($"hash find, {Keys / 1000}k keys, 1 process", "ConcurrentDictionary", find[2], find[0], "ns", "≤ 2×");
        t.AddTime($"hash find, {Keys / 1000}k keys, 1 process", "Dictionary + lock", find[1], find[0], "ns", "report");

        // A hot set: 1,000 keys of the same tables (the lookups stay in the caches).
        var hot = RandomProbes(keys[..1000], Operations, 6);
        double[] findHot = Measure.NanosecondsPerOp(Operations,
            n => FindShared(table, hot, n),
            n => FindLocked(dictionary, gate, hot, n),
            n => FindConcurrent(concurrent, hot, n));
        t.AddTime("hash find, 1k hot keys, 1 process", "ConcurrentDictionary", findHot[2], findHot[0], "ns", "≤ 2×");
        t.AddTime("hash find, 1k hot keys, 1 process", "Dictionary + lock", findHot[1], findHot[0], "ns", "report");

        var fresh = RandomKeys(Keys, 3);
        double[] insert = Measure.NanosecondsPerOp(Keys * 10,
            n => InsertShared(bench, fresh, n),
            n => InsertLocked(fresh, n),
            n => InsertConcurrent(fresh, n));
        t.AddTime("hash insert into an empty table (growing), 1 process", "ConcurrentDictionary", insert[2], insert[0], "ns", "report");
        t.AddTime("hash insert into an empty table (growing), 1 process", "Dictionary + lock", insert[1], insert[0], "ns", "report");

        var (oursFind2, peerFind2) = TwoSided(bench, "find", () => FindConcurrent(concurrent, probes, 100_000));
        t.AddThroughput("hash find, 2 processes (ours) vs 2 threads (peer), 2 cores", "ConcurrentDictionary", peerFind2, oursFind2, "≤ 2×");
        var (oursSet2, peerSet2) = TwoSided(bench, "update", () => UpdateConcurrent(concurrent, probes, 100_000));
        t.AddThroughput("hash update of present keys, 2 processes vs 2 threads", "ConcurrentDictionary", peerSet2, oursSet2, "report");

        var area = SharedArea.Create(bench.A, bench.A.Owner, bench.Instance.Tranches);
        foreach (int size in new[] { 64, 1024, 64 * 1024 })
        {
            double[] alloc = Measure.NanosecondsPerOp(Operations / 4,
                n => AllocFreeShared(area, size, n),
                n => AllocFreeNative(size, n));
            t.AddTime($"allocate + free {size} B", "malloc + free (NativeMemory.Alloc + Free)", alloc[1], alloc[0], "ns", "report");
        }
        area.Destroy();
        Console.WriteLine(t.ToMarkdown());
        Console.WriteLine($"({Keys} keys of 8 bytes with 8-byte values; {Environment.ProcessorCount} cores; the table grew to " +
                          $"{table.BucketCount} buckets in {table.Area.SegmentCount} segments, {table.Area.TotalSize / 1024} kB)");
        registry.Release(TableName);
    }

    /// <summary>Child: <c>DIR KEY ID MODE SECONDS</c>; attaches the instance on slot 2, the named table, runs MODE
    /// (find or update of random present keys) from "go" for SECONDS and prints "ops N".</summary>
    public int RunChild(string[] args)
    {
        var stat = FileStat.TryStat(args[0])!.Value;
        using var instance = InstanceShmem.Attach(SegmentKind.Posix, long.Parse(args[1], CultureInfo.InvariantCulture),
            long.Parse(args[2], CultureInfo.InvariantCulture), stat);
        using var owner = instance.Owners.CreateOwner(2, instance.Tranches);
        using var dsm = new DsmSession(instance, owner, DsmConfig.For(DsmType.Posix, args[0], stat));
        var table = new DsmRegistry(instance, owner, dsm).GetNamedHashTable(TableName, sizeof(long), sizeof(long), out _);
        var probes = RandomProbes(RandomKeys(Keys, 1), Operations, 5);
        bool update = args[3] == "update";
        Action chunk = () => { if (update) UpdateShared(table, probes, 100_000); else FindShared(table, probes, 100_000); };
        RunFor(TimeSpan.FromMilliseconds(1500), chunk); // warm-up: tiered compilation reaches the optimised code first
        Console.WriteLine("ready");
        if (Console.ReadLine() != "go")
            return 2;
        long ops = RunFor(TimeSpan.FromSeconds(double.Parse(args[4], CultureInfo.InvariantCulture)), chunk);
        Console.WriteLine($"ops {ops}");
        dsm.DetachAll();
        return 0;
    }

    /// <summary>Ops/s of ours (this process and a child, each pinned to its core) and of the peer (two threads).</summary>
    private static (double Ours, double Peer) TwoSided(DsmSuite.BenchInstance bench, string mode, Action peerChunk)
    {
        var registry = new DsmRegistry(bench.Instance, bench.A.Owner, bench.A);
        var table = registry.GetNamedHashTable(TableName, sizeof(long), sizeof(long), out _);
        var probes = RandomProbes(RandomKeys(Keys, 1), Operations, 4);
        var ours = new List<double>();
        var peer = new List<double>();
        for (int run = 0; run < 3; run++)
        {
            using (var child = BenchChild.Start("area", [.. bench.ChildArgs, mode, TwoProcessRun.TotalSeconds.ToString(CultureInfo.InvariantCulture)]))
            {
                child.WaitForLine("ready");
                using var pinned = Affinity.PinParent();
                child.WriteLine("go");
                long mine = RunFor(TwoProcessRun, () => { if (mode == "update") UpdateShared(table, probes, 100_000); else FindShared(table, probes, 100_000); });
                long theirs = long.Parse(child.WaitForLine("ops ")[4..], CultureInfo.InvariantCulture);
                child.WaitForExit();
                ours.Add((mine + theirs) / TwoProcessRun.TotalSeconds);
            }
            long a = 0, b = 0;
            var other = new Thread(() => b = RunFor(TwoProcessRun, peerChunk));
            other.Start();
            a = RunFor(TwoProcessRun, peerChunk);
            other.Join();
            peer.Add((a + b) / TwoProcessRun.TotalSeconds);
        }
        return (Stats.Median(ours), Stats.Median(peer));
    }

    private static long RunFor(TimeSpan duration, Action chunk)
    {
        var sw = Stopwatch.StartNew();
        long ops = 0;
        while (sw.Elapsed < duration)
        {
            chunk();
            ops += 100_000;
        }
        return ops;
    }

    private static long[] RandomKeys(int count, int seed)
    {
        var random = new Random(seed);
        var set = new HashSet<long>();
        while (set.Count < count)
            set.Add(random.NextInt64());
        return [.. set];
    }

    private static long[] RandomProbes(long[] keys, int count, int seed)
    {
        var random = new Random(seed);
        var probes = new long[count];
        for (int i = 0; i < count; i++)
            probes[i] = keys[random.Next(keys.Length)];
        return probes;
    }

    private static ReadOnlySpan<byte> Bytes(in long value) => MemoryMarshal.AsBytes(new ReadOnlySpan<long>(in value));

    private static int s_cursor;

    private static void FindShared(SharedHashTable table, long[] probes, int n)
    {
        Span<byte> value = stackalloc byte[8];
        int c = s_cursor;
        long sum = 0;
        for (int i = 0; i < n; i++)
        {
            long key = probes[c];
            c = c + 1 == probes.Length ? 0 : c + 1;
            table.Read(Bytes(in key), value);
            sum += value[0];
        }
        s_cursor = c;
        GC.KeepAlive(sum);
    }

    private static void UpdateShared(SharedHashTable table, long[] probes, int n)
    {
        int c = s_cursor;
        for (int i = 0; i < n; i++)
        {
            long key = probes[c];
            c = c + 1 == probes.Length ? 0 : c + 1;
            long v = key + i;
            table.Set(Bytes(in key), Bytes(in v));
        }
        s_cursor = c;
    }

    private static void FindLocked(Dictionary<long, long> d, object gate, long[] probes, int n)
    {
        int c = s_cursor;
        long sum = 0;
        for (int i = 0; i < n; i++)
        {
            long key = probes[c];
            c = c + 1 == probes.Length ? 0 : c + 1;
            lock (gate)
                sum += d.TryGetValue(key, out long v) ? v : 0;
        }
        s_cursor = c;
        GC.KeepAlive(sum);
    }

    private static void FindConcurrent(ConcurrentDictionary<long, long> d, long[] probes, int n)
    {
        int c = Random.Shared.Next(probes.Length);
        long sum = 0;
        for (int i = 0; i < n; i++)
        {
            long key = probes[c];
            c = c + 1 == probes.Length ? 0 : c + 1;
            sum += d.TryGetValue(key, out long v) ? v : 0;
        }
        GC.KeepAlive(sum);
    }

    private static void UpdateConcurrent(ConcurrentDictionary<long, long> d, long[] probes, int n)
    {
        int c = Random.Shared.Next(probes.Length);
        for (int i = 0; i < n; i++)
        {
            long key = probes[c];
            c = c + 1 == probes.Length ? 0 : c + 1;
            d[key] = key + i;
        }
    }

    private static int s_insertRound;

    private static void InsertShared(DsmSuite.BenchInstance bench, long[] keys, int n)
    {
        var area = SharedArea.Create(bench.A, bench.A.Owner, bench.Instance.Tranches);
        var table = SharedHashTable.Create(area, sizeof(long));
        for (int i = 0; i < n; i++)
        {
            long key = keys[i % keys.Length] + (i / keys.Length) + s_insertRound;
            table.Set(Bytes(in key), Bytes(in key));
        }
        s_insertRound++;
        area.Destroy();
    }

    private static void InsertLocked(long[] keys, int n)
    {
        var d = new Dictionary<long, long>();
        var gate = new object();
        for (int i = 0; i < n; i++)
        {
            long key = keys[i % keys.Length] + (i / keys.Length);
            lock (gate)
                d[key] = key;
        }
        GC.KeepAlive(d);
    }

    private static void InsertConcurrent(long[] keys, int n)
    {
        var d = new ConcurrentDictionary<long, long>();
        for (int i = 0; i < n; i++)
        {
            long key = keys[i % keys.Length] + (i / keys.Length);
            d[key] = key;
        }
        GC.KeepAlive(d);
    }

    private static void AllocFreeShared(SharedArea area, int size, int n)
    {
        for (int i = 0; i < n; i++)
            area.Free(area.Allocate(size));
    }

    /// <summary>malloc + free (what NativeMemory.Alloc + Free call; Marshal's form needs no unsafe code here).</summary>
    private static void AllocFreeNative(int size, int n)
    {
        for (int i = 0; i < n; i++)
            Marshal.FreeHGlobal(Marshal.AllocHGlobal(size));
    }
}
