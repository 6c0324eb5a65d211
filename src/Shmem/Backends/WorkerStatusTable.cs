using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Text;

namespace Postmaster.Shmem.Backends;

/// <summary>Where a configured (static) worker is in its life, as <c>status</c> shows it.</summary>
internal enum WorkerRunState
{
    /// <summary>A process runs it (status shows "starting" until the backend has attached).</summary>
    Running = 1,

    /// <summary>It exited and waits for its restart delay (NextStartUnixMs).</summary>
    Backoff = 2,

    /// <summary>Stopped by an operator (<c>terminate</c>); <c>start-worker</c> starts it again.</summary>
    Stopped = 3,

    /// <summary>Given up: restart_limit consecutive failures, or it failed with restart = never.</summary>
    Failed = 4,

    /// <summary>It finished its work (exit 0) and its restart policy does not start it again.</summary>
    Done = 5,

    /// <summary>Waiting to be started (at start-up, after a crash restart, or while no slot is free).</summary>
    Pending = 6,
}

/// <summary>One configured worker instance as the postmaster last published it.</summary>
internal sealed record WorkerStatus(string Name, WorkerRunState State, int Pid, int Restarts, int Failures,
    long NextStartUnixMs, long LastExitUnixMs, string LastExit);

/// <summary>
/// The postmaster's published view of its static workers, for <c>status</c> (the postmaster's private table is the
/// truth; this is a copy it rewrites after every change). One writer (the postmaster), any number of readers; a
/// sequence word makes a reader's copy consistent (odd while the postmaster writes; a reader retries). Validated by
/// every reader: magic, layout version, sizes, counts.
/// </summary>
internal sealed unsafe class WorkerStatusTable
{
    public const int MaxNameBytes = 63;
    public const int MaxExitBytes = 191;
    private const uint Magic = 0x504D_5753; // "PMWS"
    private const uint LayoutVersion = 1;
    private const int NameOffset = 64, ExitOffset = 128;

    [StructLayout(LayoutKind.Explicit, Size = 64)]
    private struct Header
    {
        [FieldOffset(0)] public uint Magic;
        [FieldOffset(4)] public uint LayoutVersion;
        [FieldOffset(8)] public int Capacity;
        [FieldOffset(12)] public int EntrySize;
        [FieldOffset(16)] public long Size;
        [FieldOffset(24)] public int Count;     // entries in use (0..Capacity)
        [FieldOffset(28)] public int Sequence;  // odd while the postmaster writes
    }

    [StructLayout(LayoutKind.Explicit, Size = EntrySize)]
    private struct Entry
    {
        public const int EntrySize = 320;
        [FieldOffset(0)] public int State;
        [FieldOffset(4)] public int Pid;
        [FieldOffset(8)] public int Restarts;
        [FieldOffset(12)] public int Failures;
        [FieldOffset(16)] public long NextStartUnixMs;
        [FieldOffset(24)] public long LastExitUnixMs;
    }

    private readonly ShmemRegion _region;
    private readonly int _capacity;

    private WorkerStatusTable(ShmemRegion region, int capacity)
    {
        _region = region;
        _capacity = capacity;
    }

    public static long RequiredSize(int capacity) => Unsafe.SizeOf<Header>() + (long)capacity * Entry.EntrySize;

    public int Capacity => _capacity;

    public static WorkerStatusTable Initialize(ShmemRegion region, int capacity)
    {
        ref var h = ref region.Ref<Header>(0);
        h.Capacity = capacity;
        h.EntrySize = Entry.EntrySize;
        h.Size = RequiredSize(capacity);
        h.Count = 0;
        h.Sequence = 0;
        h.LayoutVersion = LayoutVersion;
        Volatile.Write(ref h.Magic, Magic);
        return new WorkerStatusTable(region, capacity);
    }

    public static WorkerStatusTable Attach(ShmemRegion region)
    {
        if (Validate(region) is { } problem)
            throw new ShmemCorruptException(problem);
        return new WorkerStatusTable(region, region.Ref<Header>(0).Capacity);
    }

    /// <summary>What is wrong with the table's header, or null.</summary>
    public static string? Validate(ShmemRegion region)
    {
        if (region.Size < Unsafe.SizeOf<Header>())
            return "worker status table is too small to hold its header";
        var h = region.Ref<Header>(0);
        if (h.Magic != Magic)
            return $"worker status table: wrong magic number 0x{h.Magic:X8} (expected 0x{Magic:X8})";
        if (h.LayoutVersion != LayoutVersion)
            return $"worker status table: layout version {h.LayoutVersion} (expected {LayoutVersion})";
        if (h.EntrySize != Entry.EntrySize || h.Capacity < 0 || h.Size != RequiredSize(h.Capacity) || h.Size > region.Size)
            return $"worker status table: capacity {h.Capacity}, entry size {h.EntrySize}, size {h.Size} do not fit its {region.Size} bytes";
        return null;
    }

    public string? Validate() => Validate(_region) is { } p ? p
        : _region.Ref<Header>(0).Capacity != _capacity ? "worker status table: its capacity changed" : null;

    private ref Entry At(int i) => ref _region.Ref<Entry>(Unsafe.SizeOf<Header>() + (long)i * Entry.EntrySize);

    /// <summary>Postmaster: replaces the whole table (entries beyond the capacity are not shown).</summary>
    public void Publish(IReadOnlyList<WorkerStatus> workers)
    {
        ref var h = ref _region.Ref<Header>(0);
        int n = Math.Min(workers.Count, _capacity);
        int seq = Volatile.Read(ref h.Sequence);
        Volatile.Write(ref h.Sequence, seq | 1);
        Interlocked.MemoryBarrier();
        for (int i = 0; i < n; i++)
        {
            var w = workers[i];
            ref var e = ref At(i);
            e.State = (int)w.State;
            e.Pid = w.Pid;
            e.Restarts = w.Restarts;
            e.Failures = w.Failures;
            e.NextStartUnixMs = w.NextStartUnixMs;
            e.LastExitUnixMs = w.LastExitUnixMs;
            fixed (Entry* p = &e)
            {
                Put((byte*)p + NameOffset, MaxNameBytes, w.Name);
                Put((byte*)p + ExitOffset, MaxExitBytes, w.LastExit);
            }
        }
        h.Count = n;
        Interlocked.MemoryBarrier();
        Volatile.Write(ref h.Sequence, (seq | 1) + 1);
    }

    /// <summary>A consistent copy; null when the postmaster kept writing (or the table is invalid).</summary>
    public List<WorkerStatus>? Read()
    {
        ref var h = ref _region.Ref<Header>(0);
        for (int attempt = 0; attempt < 1000; attempt++)
        {
            int seq = Volatile.Read(ref h.Sequence);
            if ((seq & 1) != 0)
            {
                Thread.Yield();
                continue;
            }
            int n = Volatile.Read(ref h.Count);
            if ((uint)n > (uint)_capacity)
                return null;
            var list = new List<WorkerStatus>(n);
            for (int i = 0; i < n; i++)
            {
                ref var e = ref At(i);
                string name, exit;
                fixed (Entry* p = &e)
                {
                    name = Get((byte*)p + NameOffset, MaxNameBytes);
                    exit = Get((byte*)p + ExitOffset, MaxExitBytes);
                }
                list.Add(new WorkerStatus(name, (WorkerRunState)e.State, e.Pid, e.Restarts, e.Failures, e.NextStartUnixMs,
                    e.LastExitUnixMs, exit));
            }
            Interlocked.MemoryBarrier();
            if (Volatile.Read(ref h.Sequence) == seq)
                return list;
        }
        return null;
    }

    private static void Put(byte* dst, int max, string text)
    {
        var span = new Span<byte>(dst, max + 1);
        span.Clear();
        // Truncate on a character boundary: texts here are for display only.
        while (Utf8Text.GetByteCount(text) > max)
            text = text[..^1];
        Utf8Text.GetBytes(text, span);
    }

    private static string Get(byte* src, int max)
    {
        var span = new ReadOnlySpan<byte>(src, max + 1);
        int len = span.IndexOf((byte)0);
        return Utf8Text.GetString(span[..(len < 0 ? max : len)]);
    }
}
