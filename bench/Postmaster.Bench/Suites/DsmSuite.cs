using System.Diagnostics;
using System.Globalization;
using System.Text;
using Postmaster.Shmem;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;

namespace Postmaster.Bench.Suites;

/// <summary>
/// Suite "dsm": dynamic shared memory operations next to the raw system-call sequences they wrap, measured in the
/// same process and interleaved (raw, DSM, raw, DSM ...) so that drift hits both alike. Per-operation medians.
/// Raw baselines: posix shm_open+posix_fallocate+mmap+close+munmap+shm_unlink (attach: shm_open+fstat+mmap+close+
/// munmap); sysv shmget+shmat+shmdt+IPC_RMID (attach: IPC_STAT+shmat+shmdt); mmap the same as posix with
/// open/unlink on a file in pm_dynshmem. Targets: OS-backed operations at most 1.3 × raw; main-region
/// create+destroy under 2 µs. Prints a markdown table and writes it to docs/benchmarks-dsm.md.
/// </summary>
public static class DsmSuite
{
    private const double RatioTarget = 1.3;
    private const double MainRegionTargetUs = 2.0;
    private const int Rounds = 10;
    private static readonly (long Size, int PerRound)[] s_sizes = [(64 * 1024, 300), (1024 * 1024, 60)];

    public static void Run()
    {
        var rows = new List<string>();
        foreach (var type in new[] { DsmType.Posix, DsmType.SysV, DsmType.Mmap })
        {
            using var bench = new BenchInstance(type, mainRegion: 0);
            foreach (var (size, perRound) in s_sizes)
            {
                rows.Add(Compare($"create + destroy", type, size, perRound,
                    () => RawCreateDestroy(bench, type, size, writeHeader: false), () => bench.A.Detach(bench.A.Create(size)!),
                    type == DsmType.SysV ? () => RawCreateDestroy(bench, type, size, writeHeader: true) : null));
                using var target = bench.A.Create(size)!;
                var handle = target.Handle;
                var rawTarget = RawObject.Create(bench, type, size, 1);
                try
                {
                    rows.Add(Compare($"attach + detach", type, size, perRound,
                        () => rawTarget.AttachDetach(), () => bench.B.Detach(bench.B.Attach(handle)!)));
                }
                finally
                {
                    rawTarget.Destroy();
                }
            }
        }
        using (var bench = new BenchInstance(DsmType.Posix, mainRegion: 16 * 1024 * 1024))
        {
            foreach (var (size, perRound) in s_sizes)
            {
                rows.Add(Absolute("create + destroy", size, perRound * 10, () => bench.A.Detach(bench.A.Create(size)!)));
                using var target = bench.A.Create(size)!;
                var handle = target.Handle;
                rows.Add(Absolute("attach + detach", size, perRound * 10, () => bench.B.Detach(bench.B.Attach(handle)!)));
            }
        }
        var text = new StringBuilder();
        text.AppendLine("# Dynamic shared memory benchmark");
        text.AppendLine();
        text.AppendLine($"Suite `dsm` (`dotnet run -c Release --project bench/Postmaster.Bench -- dsm`), {DateTime.UtcNow:yyyy-MM-dd}, " +
                        $"{Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}.");
        text.AppendLine($"Medians of {Rounds} interleaved rounds per row; each operation timed on its own. \"raw\" is the bare system-call " +
                        "sequence in the same process (see the suite's summary); \"alloc\" is managed bytes allocated per DSM operation.");
        text.AppendLine($"Targets: OS-backed ≤ {RatioTarget}× raw; main region create + destroy < {MainRegionTargetUs} µs.");
        text.AppendLine();
        text.AppendLine("SysV creation also has a \"raw + header\" baseline: the raw sequence plus one write to the first page, " +
                        "which is what writing the segment header costs (a page fault; SysV has no descriptor to pwrite through).");
        text.AppendLine();
        text.AppendLine("| operation | implementation | size | raw | DSM | DSM ÷ raw | raw + header | DSM ÷ (raw + header) | alloc | target |");
        text.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        rows.ForEach(r => text.AppendLine(r));
        Console.Write(text);
        var docs = Path.Combine(RepositoryRoot(), "docs", "benchmarks-dsm.md");
        File.WriteAllText(docs, text.ToString());
        Console.WriteLine($"\nwritten to {docs}");
    }

    /// <param name="rawWithHeader">For SysV creation: the raw sequence plus one 8-byte write to the first page, the
    /// page fault that writing the segment header costs (SysV has no descriptor to pwrite through).</param>
    private static string Compare(string op, DsmType type, long size, int perRound, Action raw, Action dsm, Action? rawWithHeader = null)
    {
        var rawTimes = new List<double>();
        var headerTimes = new List<double>();
        var dsmTimes = new List<double>();
        long allocated = 0;
        long dsmOps = 0;
        Measure(raw, perRound / 4, null);
        Measure(dsm, perRound / 4, null);
        for (int round = 0; round < Rounds; round++)
        {
            Measure(raw, perRound, rawTimes);
            if (rawWithHeader is not null)
                Measure(rawWithHeader, perRound, headerTimes);
            long before = GC.GetAllocatedBytesForCurrentThread();
            Measure(dsm, perRound, dsmTimes);
            allocated += GC.GetAllocatedBytesForCurrentThread() - before;
            dsmOps += perRound;
        }
        double r = Stats.Median(rawTimes);
        double d = Stats.Median(dsmTimes);
        double ratio = d / r;
        string withHeader = rawWithHeader is null ? "— | —" : $"{Stats.Median(headerTimes):F2} µs | {d / Stats.Median(headerTimes):F2}×";
        return $"| {op} | {type.ToString().ToLowerInvariant()} | {Size(size)} | {r:F2} µs | {d:F2} µs | {ratio:F2}× | {withHeader} | " +
               $"{allocated / dsmOps} B | {(ratio <= RatioTarget ? "met" : "MISSED")} (≤ {RatioTarget}×) |";
    }

    private static string Absolute(string op, long size, int perRound, Action dsm)
    {
        var times = new List<double>();
        Measure(dsm, perRound / 4, null);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int round = 0; round < Rounds; round++)
            Measure(dsm, perRound, times);
        long allocated = (GC.GetAllocatedBytesForCurrentThread() - before) / ((long)Rounds * perRound);
        double d = Stats.Median(times);
        string target = op.StartsWith("create", StringComparison.Ordinal)
            ? $"{(d < MainRegionTargetUs ? "met" : "MISSED")} (< {MainRegionTargetUs} µs)" : "—";
        return $"| {op} | main region | {Size(size)} | — | {d:F2} µs | — | — | — | {allocated} B | {target} |";
    }

    private static void Measure(Action action, int count, List<double>? times)
    {
        for (int i = 0; i < count; i++)
        {
            long start = Stopwatch.GetTimestamp();
            action();
            long end = Stopwatch.GetTimestamp();
            times?.Add((end - start) * 1_000_000.0 / Stopwatch.Frequency);
        }
    }

    private static string Size(long bytes) => bytes >= 1024 * 1024 ? $"{bytes / (1024 * 1024)} MB" : $"{bytes / 1024} kB";

    /// <summary>The raw create+destroy sequence; the same name (or key) every time, as it is removed at the end.</summary>
    private static void RawCreateDestroy(BenchInstance bench, DsmType type, long size, bool writeHeader)
    {
        var obj = RawObject.Create(bench, type, size, 0, writeHeader);
        obj.Destroy();
    }

    /// <summary>One raw OS object made with bare system calls (no header, no bookkeeping).</summary>
    private sealed class RawObject
    {
        private readonly DsmType _type;
        private readonly string _name;
        private readonly int _id;
        private readonly long _size;

        private RawObject(DsmType type, string name, int id, long size)
        {
            _type = type;
            _name = name;
            _id = id;
            _size = size;
        }

        /// <summary>Creates raw object number <paramref name="n"/> of this instance (names are cached per instance,
        /// so the timed loop formats nothing).</summary>
        public static RawObject Create(BenchInstance bench, DsmType type, long size, int n, bool writeHeader = false)
        {
            const int Mode = 0x180;
            if (type == DsmType.SysV)
            {
                int key = bench.RawKey(n);
                int id = Libc.shmget(key, (nuint)size, Libc.IPC_CREAT | Libc.IPC_EXCL | Mode);
                Check(id, "shmget");
                nint p = Libc.shmat(id, 0, 0);
                Check(p == -1 ? -1 : 0, "shmat");
                if (writeHeader)
                    System.Runtime.InteropServices.Marshal.WriteInt64(p, 0x5344_4D50);
                Check(Libc.shmdt(p), "shmdt");
                return new RawObject(type, "", id, size);
            }
            string name = bench.RawName(n);
            const int Flags = Libc.O_RDWR | Libc.O_CREAT | Libc.O_EXCL | Libc.O_CLOEXEC;
            int fd = type == DsmType.Posix ? Libc.shm_open(name, Flags, Mode) : Libc.open(name, Flags, Mode);
            Check(fd, "open");
            Check(-Libc.posix_fallocate(fd, 0, size), "posix_fallocate");
            nint m = Libc.mmap(0, (nuint)size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
            Check(m == Libc.MAP_FAILED ? -1 : 0, "mmap");
            Libc.close(fd);
            Check(Libc.munmap(m, (nuint)size), "munmap");
            return new RawObject(type, name, -1, size);
        }

        public void AttachDetach()
        {
            if (_type == DsmType.SysV)
            {
                if (!SysVShm.TryStat(_id, out var info, out _))
                    throw new InvalidOperationException("IPC_STAT failed");
                nint p = Libc.shmat(_id, 0, 0);
                Check(p == -1 ? -1 : 0, "shmat");
                Check(Libc.shmdt(p), "shmdt");
                GC.KeepAlive(info);
                return;
            }
            int fd = _type == DsmType.Posix ? Libc.shm_open(_name, Libc.O_RDWR | Libc.O_CLOEXEC, 0) : Libc.open(_name, Libc.O_RDWR | Libc.O_CLOEXEC, 0);
            Check(fd, "open");
            long size = FileStat.OfDescriptor(fd, _name).Size;
            nint m = Libc.mmap(0, (nuint)size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
            Check(m == Libc.MAP_FAILED ? -1 : 0, "mmap");
            Libc.close(fd);
            Check(Libc.munmap(m, (nuint)size), "munmap");
        }

        public void Destroy()
        {
            int rc = _type switch
            {
                DsmType.SysV => Libc.shmctl(_id, Libc.IPC_RMID, (nint)0),
                DsmType.Posix => Libc.shm_unlink(_name),
                _ => Libc.unlink(_name),
            };
            Check(rc, "remove");
            GC.KeepAlive(_size);
        }

        private static void Check(int rc, string call)
        {
            if (rc < 0)
                throw new InvalidOperationException($"{call} failed: {Libc.StrError(rc == -1 ? Libc.Errno : -rc)}");
        }
    }

    /// <summary>A throw-away instance: data directory, POSIX main segment, control segment, two sessions.</summary>
    internal sealed class BenchInstance : IDisposable
    {
        private readonly string _dir;
        private readonly MainSegment _main;
        private readonly DsmControl _control;
        private readonly LockOwner _ownerA;
        private readonly LockOwner _ownerB;

        public BenchInstance(DsmType type, long mainRegion)
        {
            _dir = Directory.CreateTempSubdirectory($"pmbench-dsm-{type}-").FullName;
            var stat = FileStat.TryStat(_dir)!.Value;
            Config = DsmConfig.For(type, _dir, stat);
            var plan = InstanceLayout.Plan(new InstanceLimits(8, 64 * 1024, DsmMainRegionSize: mainRegion));
            _main = MainSegment.Create(new MainSegmentSpec(SegmentKind.Posix, _dir, stat, HugePagesMode.Off), plan, NullShmemLogger.Instance);
            Instance = InstanceShmem.Wrap(_main);
            _control = DsmControl.Create(Instance, Config, DsmControlLayout.DefaultCapacity(8));
            _main.Header.DsmControlHandle = _control.Handle.Value;
            _ownerA = Instance.Owners.CreateOwner(0, Instance.Tranches);
            _ownerB = Instance.Owners.CreateOwner(1, Instance.Tranches);
            _rawNames = type == DsmType.Mmap
                ? (Path.Combine(Config.DynShmemDirectory, "raw.0"), Path.Combine(Config.DynShmemDirectory, "raw.1"))
                : ($"/pmbench.{Environment.ProcessId}.0", $"/pmbench.{Environment.ProcessId}.1");
            A = new DsmSession(Instance, _ownerA, Config);
            B = new DsmSession(Instance, _ownerB, Config);
        }

        public DsmConfig Config { get; }

        public InstanceShmem Instance { get; }

        /// <summary>What a child process needs to attach the instance: data directory, main segment key and id.</summary>
        public string[] ChildArgs => [_dir, _main.Mapping.Key.ToString(CultureInfo.InvariantCulture), _main.Mapping.Id.ToString(CultureInfo.InvariantCulture)];

        public DsmSession A { get; }

        public DsmSession B { get; }

        /// <summary>Name of raw object <paramref name="n"/> (0 or 1): under /dev/shm for POSIX, in pm_dynshmem for mmap.</summary>
        public string RawName(int n) => n == 0 ? _rawNames.Zero : _rawNames.One;

        /// <summary>SysV key of raw object <paramref name="n"/> (0 or 1), derived from the pid.</summary>
        public int RawKey(int n) => unchecked((int)(0x5200_0000u ^ ((uint)Environment.ProcessId << 4) ^ (uint)n)) & 0x7FFF_FFFF;

        private readonly (string Zero, string One) _rawNames;

        public void Dispose()
        {
            A.Dispose();
            B.Dispose();
            _ownerA.Dispose();
            _ownerB.Dispose();
            _control.DestroyAll();
            _control.Dispose();
            _main.Destroy();
            _main.Dispose();
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static string RepositoryRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Postmaster.sln")))
                    return d.FullName;
        throw new InvalidOperationException("cannot find the repository root (Postmaster.sln)");
    }
}

/// <summary>Suite "dsm": DSM create/attach against raw syscalls, for each implementation and the main region.</summary>
public sealed class DsmBenchSuite : IBenchSuite
{
    public string Name => "dsm";

    public string Description => "dynamic shared memory create+destroy and attach+detach vs raw syscalls";

    public void Run() => DsmSuite.Run();
}
