using System.Globalization;
using System.Text;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Registry;

namespace Postmaster.Shmem.Instance;

/// <summary>
/// The instance as Prometheus text (exposition format 0.0.4), from what every reader can see: the lock file and the
/// shared memory (slots, worker status table, instance counters, DSM control segment, registry, main segment index).
/// One renderer for <c>postmaster metrics</c> and the built-in <c>metrics</c> worker's <c>/metrics</c>, so the two
/// never differ. Names follow Prometheus conventions: a <c>postmaster_</c> prefix, <c>_total</c> counters, seconds
/// and bytes, no pid labels. Everything is read without locks (each value is one word; a scrape is a snapshot of
/// values each consistent on its own).
/// </summary>
internal static class InstanceMetrics
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private static readonly string[] States = ["starting", "ready", "stopping"];
    /// <summary>The slot name of a pool member that waits for work.</summary>
    private const string PoolMemberName = "pool";

    private static readonly string[] Kinds = ["static", "dynamic", "connection", "pool"];
    private static readonly DsmImplementation[] Implementations = [DsmImplementation.Posix, DsmImplementation.SysV, DsmImplementation.Mmap, DsmImplementation.MainRegion];

    /// <summary>The text for a server that does not run: only <c>postmaster_up 0</c>.</summary>
    public static string Down()
    {
        var m = new Writer();
        m.Gauge("postmaster_up", "Whether the server runs (1) or not (0).", 0);
        return m.ToString();
    }

    /// <summary>The text for the running server whose lock file says <paramref name="contents"/>.</summary>
    /// <param name="devShmFreeBytes">Free space on /dev/shm, when it could be read.</param>
    /// <param name="shmem">Null while its shared memory cannot be attached (it is starting, or rebuilding it): then
    /// only what the lock file says.</param>
    public static string Render(LockFileContents contents, InstanceShmem? shmem, DsmControl? dsm, long? devShmFreeBytes)
    {
        var m = new Writer();
        m.Gauge("postmaster_up", "Whether the server runs (1) or not (0).", 1);
        m.Gauge("postmaster_start_time_seconds", "When the server started, in seconds since the Unix epoch.", contents.StartTime);
        string state = contents.TrimmedStatus ?? "";
        m.Family("postmaster_state", "gauge", "The server's state (1 for the current one).");
        foreach (string s in States)
            m.Sample("postmaster_state", [("state", s)], s == state ? 1 : 0);
        if (shmem is null)
            return m.ToString();

        var counters = InstanceCounters.Open(shmem.Main.Index, out _);
        if (counters is not null)
        {
            var recovery = counters.Recovery;
            m.Counter("postmaster_full_restarts_total", "Full crash restarts (shared memory rebuilt, every backend ended) since start.", recovery.FullRestarts);
            m.Counter("postmaster_reconciled_crashes_total", "Backend crashes reconciled without a restart since start.", recovery.Reconciles);
        }

        // Backends by kind and state, as status shows them.
        var workers = shmem.WorkerStatus.Read() ?? [];
        var staticNames = workers.Select(w => w.Name).ToHashSet(StringComparer.Ordinal);
        var counts = new Dictionary<(string Kind, string State), int>();
        int slotsInUse = 0, poolIdle = 0, sessions = 0;
        for (int i = 0; i < shmem.Slots.Count; i++)
        {
            var b = shmem.Slots.Read(i);
            if (b.State == BackendSlotState.Unused)
                continue;
            slotsInUse++;
            bool connection = b.Session.Count > 0 || b.Session.Client.Length > 0;
            if (b.Session.Client.Length > 0)
                sessions++;
            string kind = connection ? "connection"
                : staticNames.Contains(b.Name) ? "static"
                : b.Pooled && b.Name == PoolMemberName ? "pool" // a member handed work takes the worker's name
                : "dynamic";
            string st = b.State == BackendSlotState.Active ? (kind == "pool" ? "idle" : "running") : "starting";
            if (kind == "pool" && st == "idle")
                poolIdle++;
            counts[(kind, st)] = counts.GetValueOrDefault((kind, st)) + 1;
        }
        m.Family("postmaster_backends", "gauge", "Backends by kind (static, dynamic, connection, pool) and state (starting, running, idle).");
        foreach (string kind in Kinds)
            foreach (string st in kind == "pool" ? new[] { "starting", "idle" } : new[] { "starting", "running" })
                m.Sample("postmaster_backends", [("kind", kind), ("state", st)], counts.GetValueOrDefault((kind, st)));
        m.Gauge("postmaster_backend_slots", "Backend slots (max_backends).", shmem.Slots.Count);
        m.Gauge("postmaster_backend_slots_used", "Backend slots in use.", slotsInUse);
        m.Gauge("postmaster_pool_idle_backends", "Pool members attached and waiting for work.", poolIdle);
        if (counters is not null)
        {
            m.Gauge("postmaster_pool_size_backends", "The pool size in effect (backend_pool_size).", counters.PoolTarget);
            var h = counters.ReadBackendStarts();
            m.Family("postmaster_backend_start_seconds", "histogram", "Backend start latency: from the postmaster's spawn to the backend attached to shared memory (since shared memory was last initialised).");
            long[] bounds = InstanceCounters.StartBucketsMicros;
            for (int i = 0; i < bounds.Length; i++)
                m.Sample("postmaster_backend_start_seconds_bucket", [("le", Seconds(bounds[i]))], h.Cumulative[i]);
            m.Sample("postmaster_backend_start_seconds_bucket", [("le", "+Inf")], h.Cumulative[^1]);
            m.Sample("postmaster_backend_start_seconds_sum", [], h.SumNanos / 1e9);
            m.Sample("postmaster_backend_start_seconds_count", [], h.Count);
        }

        // Static workers.
        if (workers.Count > 0)
        {
            m.Family("postmaster_worker_restarts_total", "counter", "Restarts of each static worker instance since start.");
            foreach (var w in workers)
                m.Sample("postmaster_worker_restarts_total", [("worker", w.Name)], w.Restarts);
            m.Family("postmaster_worker_consecutive_failures", "gauge", "Failed starts or crashes in a row of each static worker instance.");
            foreach (var w in workers)
                m.Sample("postmaster_worker_consecutive_failures", [("worker", w.Name)], w.Failures);
            m.Family("postmaster_worker_last_exit_time_seconds", "gauge", "When each static worker instance last exited (0: never), in seconds since the Unix epoch.");
            foreach (var w in workers)
                m.Sample("postmaster_worker_last_exit_time_seconds", [("worker", w.Name)], w.LastExitUnixMs / 1000.0);
            m.Family("postmaster_worker_state", "gauge", "Each static worker instance's state (1 for the current one).");
            foreach (var w in workers)
                foreach (WorkerRunState s in Enum.GetValues<WorkerRunState>())
                    m.Sample("postmaster_worker_state", [("worker", w.Name), ("state", s.ToString().ToLowerInvariant())], w.State == s ? 1 : 0);
        }

        // Dynamic shared memory and the registry.
        var segments = dsm?.Inspect() ?? [];
        var byImpl = segments.Where(s => s.State != DsmItemState.Free).GroupBy(s => s.Implementation)
            .ToDictionary(g => g.Key, g => (Count: g.Count(), Bytes: g.Sum(s => s.Size)));
        m.Family("postmaster_dsm_segments", "gauge", "Dynamic shared memory segments by implementation.");
        foreach (var impl in Implementations)
            m.Sample("postmaster_dsm_segments", [("implementation", ImplName(impl))], byImpl.GetValueOrDefault(impl).Count);
        m.Family("postmaster_dsm_bytes", "gauge", "Bytes of dynamic shared memory segments by implementation.");
        foreach (var impl in Implementations)
            m.Sample("postmaster_dsm_bytes", [("implementation", ImplName(impl))], byImpl.GetValueOrDefault(impl).Bytes);
        var registry = shmem.DsmRegistryTable.List();
        m.Family("postmaster_dsm_registry_entries", "gauge", "Named DSM registry entries by state.");
        foreach (var s in new[] { DsmRegistryEntryState.Initialising, DsmRegistryEntryState.Ready })
            m.Sample("postmaster_dsm_registry_entries", [("state", s.ToString().ToLowerInvariant())], registry.Count(e => e.State == s));

        // Memory.
        long total = shmem.Main.Header.TotalSize;
        var free = shmem.Main.Index.List().FirstOrDefault(r => r.Name is null);
        m.Gauge("postmaster_main_segment_bytes", "Size of the main shared memory segment.", total);
        m.Gauge("postmaster_main_segment_free_bytes", "Space left in the main segment for named allocations.", free.Name is null && free.Offset is long ? free.Size : 0);
        if (devShmFreeBytes is long shm)
            m.Gauge("postmaster_dev_shm_free_bytes", "Free space on /dev/shm, where POSIX shared memory lives.", shm);

        // Connections.
        if (counters is not null)
        {
            var (accepted, rejected) = counters.Connections;
            m.Gauge("postmaster_connections", "Client sessions being served now.", sessions);
            m.Counter("postmaster_connections_accepted_total", "Client connections accepted since start.", accepted);
            m.Counter("postmaster_connections_rejected_total", "Client connections refused (too many, or the server not ready) since start.", rejected);
            var (direct, tickets) = counters.DirectConnections;
            m.Counter("postmaster_connections_direct_total", "Of the connections accepted, those an idle connection backend accepted itself (with a ticket).", direct);
            m.Gauge("postmaster_connection_backends_accepting", "Idle connection backends accepting new connections themselves now (holding a ticket).", tickets);
        }
        return m.ToString();
    }

    private static string ImplName(DsmImplementation i) => i switch
    {
        DsmImplementation.Posix => "posix",
        DsmImplementation.SysV => "sysv",
        DsmImplementation.Mmap => "mmap",
        _ => "main",
    };

    private static string Seconds(long micros) => (micros / 1e6).ToString("0.######", CultureInfo.InvariantCulture);

    /// <summary>The exposition text: HELP and TYPE once per family, then its samples.</summary>
    private sealed class Writer
    {
        private readonly StringBuilder _sb = new(4096);

        public void Family(string name, string type, string help) =>
            _sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
               .Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

        public void Gauge(string name, string help, double value)
        {
            Family(name, "gauge", help);
            Sample(name, [], value);
        }

        public void Counter(string name, string help, double value)
        {
            Family(name, "counter", help);
            Sample(name, [], value);
        }

        public void Sample(string name, (string Key, string Value)[] labels, double value)
        {
            _sb.Append(name);
            if (labels.Length > 0)
            {
                _sb.Append('{');
                for (int i = 0; i < labels.Length; i++)
                {
                    if (i > 0)
                        _sb.Append(',');
                    _sb.Append(labels[i].Key).Append("=\"");
                    foreach (char c in labels[i].Value)
                        _sb.Append(c switch { '\\' => "\\\\", '"' => "\\\"", '\n' => "\\n", _ => c.ToString() });
                    _sb.Append('"');
                }
                _sb.Append('}');
            }
            _sb.Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        }

        public override string ToString() => _sb.ToString();
    }
}
