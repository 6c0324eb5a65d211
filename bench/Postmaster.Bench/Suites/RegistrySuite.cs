using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Postmaster.Shmem;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Registry;
using Postmaster.Shmem.Segments;

namespace Postmaster.Bench.Suites;

/// <summary>
/// Suite "registry": the DSM registry against baselines measured in the same run. (1) The hot path, a lookup of a
/// name this process already has mapped (shared-lock table lookup + FindMapping), against a Dictionary lookup and
/// against FindMapping alone. (2) A process's first attach of a name (lookup + DSM attach; measured as attach +
/// detach so it can repeat) against a raw <see cref="DsmSession.Attach"/> + Detach, for POSIX segments and for
/// main-region ones (where no system call hides the registry's own cost). (3) Registering and releasing a name
/// against the DSM operations it performs (Create + Pin + Unpin + Detach). Two sessions on two slots of this process
/// stand for two backends. Prints a markdown table and writes docs/benchmarks-registry.md.
/// </summary>
public sealed class RegistrySuite : IBenchSuite
{
    private const long SegmentSize = 64 * 1024;
    private const int HotOps = 2_000_000;
    private const int Rounds = 20;
    private const int PerRound = 300;

    public string Name => "registry";

    public string Description => "DSM registry lookup, first attach and register+release vs Dictionary and raw DSM";

    public void Run()
    {
        var table = new BenchTable();
        using (Affinity.PinParent())
        {
            using (var bench = new RegistryBenchInstance(DsmType.Posix, mainRegion: 0))
            {
                MeasureHotLookup(bench, table);
                MeasureFirstAttach(bench, table, "POSIX");
                MeasureRegisterRelease(bench, table, "POSIX");
            }
            using (var bench = new RegistryBenchInstance(DsmType.Posix, mainRegion: 16 * 1024 * 1024))
            {
                MeasureFirstAttach(bench, table, "main region");
                MeasureRegisterRelease(bench, table, "main region");
            }
        }
        string markdown = table.ToMarkdown();
        Console.Write(markdown);
        WriteReport(markdown);
    }

    private static void MeasureHotLookup(RegistryBenchInstance bench, BenchTable table)
    {
        const string name = "bench-hot";
        var created = bench.A.GetNamedSegment(name, SegmentSize, r => r.Ref<long>(0) = 1, out _);
        bench.B.GetNamedSegment(name, SegmentSize, null, out _); // B has it mapped from here on
        var dictionary = new Dictionary<string, DsmSegment>(StringComparer.Ordinal) { [name] = created.Segment };
        var ns = Measure.NanosecondsPerOp(HotOps,
            n => DictionaryLookup(dictionary, name, n),
            n => FindMapping(bench.B.Session, created.Handle, n),
            n => RegistryLookup(bench.B, name, n));
        table.AddTime("Hot lookup (name mapped here)", "Dictionary<string,_> lookup", ns[0], ns[2], "ns", "≤ 1 µs");
        table.AddTime("Hot lookup (name mapped here)", "DsmSession.FindMapping", ns[1], ns[2], "ns", "≤ 1 µs");
        bench.A.Release(name);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DictionaryLookup(Dictionary<string, DsmSegment> d, string name, int n)
    {
        for (int i = 0; i < n; i++)
            if (!d.TryGetValue(name, out _))
                throw new InvalidOperationException("missing");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void FindMapping(DsmSession session, DsmHandle handle, int n)
    {
        for (int i = 0; i < n; i++)
            if (session.FindMapping(handle) is null)
                throw new InvalidOperationException("not mapped");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RegistryLookup(DsmRegistry registry, string name, int n)
    {
        for (int i = 0; i < n; i++)
        {
            registry.GetNamedSegment(name, SegmentSize, null, out bool found);
            if (!found)
                throw new InvalidOperationException("not found");
        }
    }

    /// <summary>B attaches A's segment for the first time and detaches it again: raw by handle, then through the
    /// registry by name, interleaved round by round.</summary>
    private static void MeasureFirstAttach(RegistryBenchInstance bench, BenchTable table, string kind)
    {
        const string name = "bench-attach";
        var created = bench.A.GetNamedSegment(name, SegmentSize, null, out _);
        var session = bench.B.Session;
        var handle = created.Handle;
        var (raw, ours) = Interleaved(
            () => session.Detach(session.Attach(handle)!),
            () => session.Detach(bench.B.GetNamedSegment(name, SegmentSize, null, out _).Segment));
        table.AddTime($"First attach by name + detach ({kind})", "DsmSession.Attach + Detach by handle", raw, ours, "µs",
            "≤ raw + 1 µs");
        bench.A.Release(name);
    }

    /// <summary>A registers a new name (create, initialise, pin, publish) and releases it (unpin, detach: destroyed),
    /// against the DSM calls alone.</summary>
    private static void MeasureRegisterRelease(RegistryBenchInstance bench, BenchTable table, string kind)
    {
        const string name = "bench-register";
        var session = bench.A.Session;
        var (raw, ours) = Interleaved(
            () =>
            {
                var seg = session.Create(SegmentSize, DsmCreateFlags.Zeroed)!;
                session.Pin(seg);
                session.Unpin(seg.Handle);
                session.Detach(seg);
            },
            () =>
            {
                bench.A.GetNamedSegment(name, SegmentSize, null, out _);
                bench.A.Release(name);
            });
        table.AddTime($"Register + release a name ({kind})", "Create + Pin + Unpin + Detach", raw, ours, "µs", "≤ raw + 2 µs");
    }

    /// <summary>Median per-operation time in µs of <paramref name="raw"/> and <paramref name="ours"/>, run in
    /// alternating rounds of <see cref="PerRound"/> operations after one warm-up round each.</summary>
    private static (double Raw, double Ours) Interleaved(Action raw, Action ours)
    {
        var rawTimes = new List<double>();
        var ourTimes = new List<double>();
        for (int round = 0; round <= Rounds; round++) // round 0 is the warm-up
        {
            double r = PerOp(raw);
            double o = PerOp(ours);
            if (round > 0)
            {
                rawTimes.Add(r);
                ourTimes.Add(o);
            }
        }
        return (Stats.Median(rawTimes), Stats.Median(ourTimes));
    }

    private static double PerOp(Action action)
    {
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < PerRound; i++)
            action();
        return Stopwatch.GetElapsedTime(start).TotalMicroseconds / PerRound;
    }

    private static void WriteReport(string markdown)
    {
        string path = Path.Combine(RepositoryRoot(), "docs", "benchmarks-registry.md");
        File.WriteAllText(path,
            "# Benchmarks: DSM registry\n\n" +
            $"Measured {DateTime.UtcNow:yyyy-MM-dd} with `dotnet run --project bench/Postmaster.Bench -c Release -- registry` on " +
            $"{Environment.ProcessorCount} cores (shared with other work), {RuntimeInformation.FrameworkDescription}, " +
            $"{RuntimeInformation.OSDescription}. Hot lookups: median of {Measure.Runs} runs of {HotOps:N0} operations after a " +
            $"warm-up run. Other rows: median of {Rounds} interleaved rounds (baseline, ours, baseline, ...) of {PerRound} " +
            "operations each. Baselines run in the same process on the same instance; two sessions on two slots stand " +
            "for two backends.\n\n" +
            markdown + "\n" +
            "- Hot lookup: `GetNamedSegment` of a name this process already has mapped: name validation and UTF-8 " +
            "encoding, the DsmRegistry LWLock in shared mode around a scan of the used table rows, then " +
            "`DsmSession.FindMapping`. No system call. The table held one name; the scan is linear in the used rows, " +
            "at one 4-byte hash compare per row.\n" +
            "- First attach: what a backend pays the first time it asks for an existing name (lookup + `DsmSession.Attach` " +
            "+ mapping pin), measured with the detach so it can repeat. For POSIX segments the system calls (shm_open, " +
            "fstat, mmap, munmap) dominate; main-region segments have none, so that row shows the registry's own cost.\n" +
            "- Register + release: a new name (claim, create, record the pending handle, pin, publish) and its release " +
            "(claim, detach, unpin: destroyed, free the row): four more short critical sections of the registry lock " +
            "than the bare DSM calls.\n");
        Console.WriteLine($"\nwritten to {path}");
    }

    private static string RepositoryRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Postmaster.sln")))
                    return d.FullName;
        throw new InvalidOperationException("cannot find the repository root (Postmaster.sln)");
    }

    /// <summary>A throw-away instance: data directory, POSIX main segment, control segment, two registries (A on
    /// slot 0, B on slot 1).</summary>
    private sealed class RegistryBenchInstance : IDisposable
    {
        private readonly string _dir;
        private readonly MainSegment _main;
        private readonly DsmControl _control;
        private readonly LockOwner[] _owners;
        private readonly DsmSession[] _sessions;

        public RegistryBenchInstance(DsmType type, long mainRegion)
        {
            _dir = Directory.CreateTempSubdirectory("pmbench-registry-").FullName;
            var stat = FileStat.TryStat(_dir)!.Value;
            var config = DsmConfig.For(type, _dir, stat);
            var plan = InstanceLayout.Plan(new InstanceLimits(8, 64 * 1024, DsmMainRegionSize: mainRegion));
            _main = MainSegment.Create(new MainSegmentSpec(SegmentKind.Posix, _dir, stat, HugePagesMode.Off), plan,
                NullShmemLogger.Instance);
            var instance = InstanceShmem.Wrap(_main);
            _control = DsmControl.Create(instance, config, DsmControlLayout.DefaultCapacity(8));
            _main.Header.DsmControlHandle = _control.Handle.Value;
            _owners = [instance.Owners.CreateOwner(0, instance.Tranches), instance.Owners.CreateOwner(1, instance.Tranches)];
            _sessions = [new DsmSession(instance, _owners[0], config), new DsmSession(instance, _owners[1], config)];
            A = new DsmRegistry(instance, _owners[0], _sessions[0]);
            B = new DsmRegistry(instance, _owners[1], _sessions[1]);
        }

        public DsmRegistry A { get; }

        public DsmRegistry B { get; }

        public void Dispose()
        {
            foreach (var s in _sessions)
                s.Dispose();
            foreach (var o in _owners)
                o.Dispose();
            _control.DestroyAll();
            _control.Dispose();
            _main.Destroy();
            _main.Dispose();
            Directory.Delete(_dir, recursive: true);
        }
    }
}
