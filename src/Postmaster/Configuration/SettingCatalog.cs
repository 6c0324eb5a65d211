namespace Postmaster.Configuration;

/// <summary>
/// The catalogue of every setting with a fixed name, in display order (grouped by <see cref="SettingGroup"/>).
/// The <c>worker.NAME.*</c> family is described by <see cref="WorkerSettingCatalog"/>. This table is the single source
/// of names, defaults and limits: the parser, <see cref="Settings"/>, <see cref="DefaultConfigFile"/> and the
/// documentation test all read it.
/// </summary>
public static class SettingCatalog
{
    public const string SharedMemoryType = "shared_memory_type";
    public const string SharedMemorySize = "shared_memory_size";
    public const string MaxBackends = "max_backends";
    public const string HugePages = "huge_pages";
    public const string DynamicSharedMemoryType = "dynamic_shared_memory_type";
    public const string MinDynamicSharedMemory = "min_dynamic_shared_memory";
    public const string DsmMaxSegments = "dsm_max_segments";
    public const string ListenAddresses = "listen_addresses";
    public const string Port = "port";
    public const string UnixSocketDirectories = "unix_socket_directories";
    public const string UnixSocketPermissions = "unix_socket_permissions";
    public const string ListenBacklog = "listen_backlog";
    public const string MaxConnections = "max_connections";
    public const string ConnectionWorker = "connection_worker";
    public const string ConnectionWorkerArgument = "connection_worker_argument";
    public const string SpareConnectionBackends = "spare_connection_backends";
    public const string MaxSessionsPerBackend = "max_sessions_per_backend";
    public const string ConnectionSchedulingPolicy = "connection_scheduling_policy";
    public const string ConcurrentSessionsPerBackend = "concurrent_sessions_per_backend";
    public const string ConnectionRejectionMessage = "connection_rejection_message";
    public const string LogDestination = "log_destination";
    public const string LogDirectory = "log_directory";
    public const string LogMinMessages = "log_min_messages";
    public const string LogRotationAge = "log_rotation_age";
    public const string LogRotationSize = "log_rotation_size";
    public const string LogRetainedFiles = "log_retained_files";
    public const string ShutdownKillTimeout = "shutdown_kill_timeout";
    public const string BackendPoolSize = "backend_pool_size";
    public const string BackendPoolPreload = "backend_pool_preload";
    public const string CrashRecovery = "crash_recovery";
    public const string RestartAfterCrash = "restart_after_crash";
    public const string CrashRestartLimit = "crash_restart_limit";
    public const string CrashRestartInterval = "crash_restart_interval";

    private const int MaxBackendsLimit = 10_000;
    private const int DsmMaxSegmentsLimit = 1_000_000;
    private const int BackendPoolSizeLimit = 1_000;
    private const int CrashRestartLimitLimit = 1_000;

    /// <summary>Every fixed-name setting, in display order.</summary>
    public static IReadOnlyList<SettingDefinition> All { get; } =
    [
        new()
        {
            Name = SharedMemoryType, Kind = SettingKind.Enum, DefaultText = "sysv", AllowedValues = ["sysv", "posix"],
            Context = SettingContext.Restart, Group = SettingGroup.SharedMemory,
            Description = "kind of the main shared memory segment",
            Documentation = "`sysv` uses shmget/shmat; `posix` uses shm_open and mmap.",
        },
        new()
        {
            Name = SharedMemorySize, Kind = SettingKind.Size, DefaultText = "8MB", Min = 0, Max = SettingUnits.Terabyte,
            Context = SettingContext.Restart, Group = SettingGroup.SharedMemory,
            Description = "extra space for named allocations in the main segment",
            Documentation = "Space in the main segment for allocations that users and modules make by name, on top of "
                + "what the server itself needs.",
        },
        new()
        {
            Name = HugePages, Kind = SettingKind.Enum, DefaultText = "try", AllowedValues = ["off", "try", "on"],
            Context = SettingContext.Restart, Group = SettingGroup.SharedMemory,
            Description = "use huge pages for the main segment",
            Documentation = "`try` falls back to normal pages when huge pages cannot be had; `on` makes that failure "
                + "stop the server from starting.",
        },
        new()
        {
            Name = DynamicSharedMemoryType, Kind = SettingKind.Enum, DefaultText = "posix",
            AllowedValues = ["posix", "sysv", "mmap"],
            Context = SettingContext.Restart, Group = SettingGroup.DynamicSharedMemory,
            Description = "kind of dynamic shared memory segments",
            Documentation = "`mmap` uses files under the data directory.",
        },
        new()
        {
            Name = MinDynamicSharedMemory, Kind = SettingKind.Size, DefaultText = "0", Min = 0, Max = SettingUnits.Terabyte,
            Context = SettingContext.Restart, Group = SettingGroup.DynamicSharedMemory,
            Description = "space reserved in the main segment for dynamic shared memory",
            Documentation = "Dynamic shared memory segments are carved from this space first, before new OS segments "
                + "are created.",
        },
        new()
        {
            Name = DsmMaxSegments, Kind = SettingKind.Int, DefaultText = "0", Min = 0, Max = DsmMaxSegmentsLimit,
            Context = SettingContext.Restart, Group = SettingGroup.DynamicSharedMemory,
            Description = "maximum number of dynamic shared memory segments; 0 means 64 + 5 * max_backends",
            Documentation = "Size of the table of dynamic shared memory segments. 0 computes it from `max_backends` "
                + "(see `Settings.EffectiveDsmMaxSegments`).",
        },
        new()
        {
            Name = MaxBackends, Kind = SettingKind.Int, DefaultText = "100", Min = 1, Max = MaxBackendsLimit,
            Context = SettingContext.Restart, Group = SettingGroup.Backends,
            Description = "maximum number of backend processes",
            Documentation = "Shared memory is sized for this many backends, so it can only change at start.",
        },
        new()
        {
            Name = BackendPoolSize, Kind = SettingKind.Int, DefaultText = "2", Min = 0, Max = BackendPoolSizeLimit,
            Context = SettingContext.Reload, Group = SettingGroup.Backends,
            Description = "number of idle backends kept started in advance",
            Documentation = "Backends started ahead of demand, attached and parked, so that a spawn request (or a static "
                + "worker's restart) does not wait for a process start. They count against `max_backends`; the pool "
                + "refills in the background.",
        },
        new()
        {
            Name = BackendPoolPreload, Kind = SettingKind.String, DefaultText = "",
            Context = SettingContext.Reload, Group = SettingGroup.Backends,
            Description = "worker entries that pool members load before a request comes (comma-separated)",
            Documentation = "Each parked pool member resolves these entries ahead of demand (loads the assembly, finds "
                + "the type, JIT-compiles its `Run`), so that a request for one of them starts it in well under a "
                + "millisecond. The entries of configured workers and the last 4 entries requested by `spawn` are "
                + "preloaded as well, so this is only needed for entries that are requested rarely but must start fast "
                + "(PostgreSQL's `shared_preload_libraries`). An entry that cannot be loaded is skipped (logged at "
                + "`debug1`); it fails, with its error, only when a worker is started with it. Each worker library has "
                + "a load context of its own, so libraries of the same name in different directories (two versions) "
                + "can both be preloaded.",
        },
        new()
        {
            Name = ConnectionWorker, Kind = SettingKind.String, DefaultText = "",
            Validate = ConnectionSettings.ValidateEntry, MaxBytes = WorkerSettingCatalog.MaxEntryBytes,
            Context = SettingContext.Restart, Group = SettingGroup.Connections,
            Description = "worker serving client connections (Assembly.dll:Namespace.Type); empty = none",
            Documentation = "A type implementing `IConnectionWorker` or `IAsyncConnectionWorker` (`Postmaster.Workers`). "
                + "When it is set, the postmaster listens on `listen_addresses`/`port` and `unix_socket_directories` "
                + "before it reports ready. Each connection is served by a connection backend: an idle one accepts it "
                + "itself, or, when none is idle, the postmaster accepts it and hands it to the first backend that is "
                + "free (docs/architecture.md, \"Client connections\"). When it is empty, nothing listens.",
        },
        new()
        {
            Name = ConnectionWorkerArgument, Kind = SettingKind.String, DefaultText = "", MaxBytes = 512,
            Context = SettingContext.Restart, Group = SettingGroup.Connections,
            Description = "free text passed to the connection worker (WorkerContext.Argument)",
            Documentation = "The same in every connection backend; the KeyValue sample reads its table size from it "
                + "(`'256MB'`).",
        },
        new()
        {
            Name = ListenAddresses, Kind = SettingKind.String, DefaultText = "localhost",
            Validate = ConnectionSettings.ValidateListenAddresses,
            Context = SettingContext.Restart, Group = SettingGroup.Connections,
            Description = "TCP addresses to listen on (host names or IP addresses; * = all)",
            Documentation = "As PostgreSQL's: `localhost` is the loopback addresses (127.0.0.1 and ::1), `*` every IPv4 "
                + "and IPv6 address, `0.0.0.0` and `::` every address of one family. An address that cannot be bound is "
                + "a warning while another one could be; when none can, the start fails.",
        },
        new()
        {
            Name = Port, Kind = SettingKind.Int, DefaultText = "5480", Min = 1, Max = 65535,
            Context = SettingContext.Restart, Group = SettingGroup.Connections,
            Description = "TCP port to listen on; also names the Unix-domain sockets",
            Documentation = "Line 4 of `postmaster.pid`. The Unix-domain socket in each directory is `.s.POSTMASTER.PORT`.",
        },
        new()
        {
            Name = UnixSocketDirectories, Kind = SettingKind.String, DefaultText = "",
            Validate = ConnectionSettings.ValidateSocketDirectories,
            Context = SettingContext.Restart, Group = SettingGroup.Connections,
            Description = "directories for Unix-domain sockets (comma-separated, relative to the data directory)",
            Documentation = "Each directory gets the socket `.s.POSTMASTER.PORT` and its lock file "
                + "`.s.POSTMASTER.PORT.lock` (the postmaster's PID), so two instances never take the same socket: a "
                + "socket is replaced only when its lock file names a process that is gone. Line 5 of `postmaster.pid` "
                + "is the first directory.",
        },
        new()
        {
            Name = UnixSocketPermissions, Kind = SettingKind.String, DefaultText = "0777",
            Validate = ConnectionSettings.ValidatePermissions,
            Context = SettingContext.Restart, Group = SettingGroup.Connections,
            Description = "access permissions of the Unix-domain sockets (octal)",
            Documentation = "As PostgreSQL's: `0777` lets anyone connect, `0770` only the owner and group, `0700` only the "
                + "owner. Only the write bit matters to connecting.",
        },
        new()
        {
            Name = ListenBacklog, Kind = SettingKind.Int, DefaultText = "511", Min = 1, Max = 65535,
            Context = SettingContext.Restart, Group = SettingGroup.Connections,
            Description = "length of the kernel's queue of connections not yet accepted",
            Documentation = "The `backlog` argument of listen(2), capped by the kernel at `net.core.somaxconn`.",
        },
        new()
        {
            Name = MaxConnections, Kind = SettingKind.Int, DefaultText = "100", Min = 1, Max = MaxBackendsLimit,
            Context = SettingContext.Reload, Group = SettingGroup.Connections,
            Description = "most client sessions at once (more are refused)",
            Documentation = "Sessions being served plus connections waiting for a backend. Connection backends count "
                + "against `max_backends` as well: a connection that finds no free backend slot is rejected the same way.",
        },
        new()
        {
            Name = SpareConnectionBackends, Kind = SettingKind.Int, DefaultText = "2", Min = 0, Max = BackendPoolSizeLimit,
            Context = SettingContext.Reload, Group = SettingGroup.Connections,
            Description = "idle connection backends kept waiting for the next connection",
            Documentation = "Apache's `MinSpareServers`: connection backends that have loaded the connection worker and wait "
                + "for a connection, so that a new connection is served without a process start. Started from the "
                + "backend pool when it has members.",
        },
        new()
        {
            Name = MaxSessionsPerBackend, Kind = SettingKind.Int, DefaultText = "0", Min = 0, Max = int.MaxValue,
            Context = SettingContext.Reload, Group = SettingGroup.Connections,
            Description = "sessions a connection backend serves before it is replaced; 0 = no limit",
            Documentation = "gunicorn's `max_requests`, php-fpm's `pm.max_requests`. A session that did not end cleanly "
                + "(the worker threw, left a lock held, or the process died) ends its backend whatever this says.",
        },
        new()
        {
            Name = ConcurrentSessionsPerBackend, Kind = SettingKind.Int, DefaultText = "1", Min = 1, Max = 10000,
            Context = SettingContext.Reload, Group = SettingGroup.Connections,
            Description = "sessions one connection backend serves at once",
            Documentation = "1 (the default) is PostgreSQL's model: a process per session, so a backend that crashes "
                + "without holding a lock disconnects only its own client. More (nginx's and gunicorn's "
                + "`worker_connections`) lets a backend serve that many sessions concurrently: an asynchronous worker "
                + "(`IAsyncConnectionWorker`) runs them as tasks on the process's socket event loop (.NET's socket "
                + "continuations run inline, `DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1`, unless the environment "
                + "says otherwise), a synchronous one on a thread each. One wake-up then serves every client that is "
                + "ready, which is what lets 50 busy clients on 2 cores match redis-server (`docs/benchmarks.md`). The "
                + "price: a backend that crashes, throws or leaves a lock held ends all of its sessions, and code that "
                + "blocks delays the other sessions of its backend. Such backends take connections from the acceptor "
                + "(they do not accept on the listening sockets themselves); `spare_connection_backends` and "
                + "`max_connections` count sessions, not backends. Applies to connection backends started after a reload.",
        },
        new()
        {
            Name = ConnectionSchedulingPolicy, Kind = SettingKind.Enum, DefaultText = "batch", AllowedValues = ["batch", "other"],
            Context = SettingContext.Reload, Group = SettingGroup.Connections,
            Description = "Linux CPU scheduling policy of connection backends",
            Documentation = "`batch` (SCHED_BATCH) keeps a backend woken by its client's request from preempting the "
                + "process running on that CPU, often the client itself: with many busy sessions, wake-ups then run in "
                + "turn instead of interrupting each other. With 50 busy clients on a 2-core machine that gave about "
                + "a fifth more throughput and fewer context switches per request, at the price of a higher p99 while the CPUs "
                + "are saturated (3–4 ms against 1.5–2 ms; `docs/benchmarks.md`). `other` is Linux's default "
                + "(SCHED_OTHER): choose it when tail latency under full load matters more. The nice value is kept. "
                + "Applies to connection backends started after a reload; other backends and the postmaster keep the "
                + "default.",
        },
        new()
        {
            Name = ConnectionRejectionMessage, Kind = SettingKind.String, DefaultText = "sorry, too many clients already",
            MaxBytes = 512,
            Context = SettingContext.Reload, Group = SettingGroup.Connections,
            Description = "line sent (with CRLF) to a refused connection",
            Documentation = "Sent to a connection over `max_connections` or without a free backend slot. During shutdown "
                + "and crash recovery the refusal says why instead (`the database system is shutting down`, `the "
                + "database system is in recovery mode`).",
        },
        new()
        {
            Name = LogDestination, Kind = SettingKind.Enum, DefaultText = "stderr", AllowedValues = ["stderr", "json", "both"],
            Context = SettingContext.Restart, Group = SettingGroup.Logging,
            Description = "where the server log goes",
            Documentation = "`stderr` writes text lines to standard error; `json` writes JSON lines to files in "
                + "`log_directory`; `both` does both.",
        },
        new()
        {
            Name = LogDirectory, Kind = SettingKind.String, DefaultText = "log", AllowEmpty = false,
            Context = SettingContext.Restart, Group = SettingGroup.Logging,
            Description = "directory of log files, relative to the data directory unless absolute",
            Documentation = "Used when `log_destination` is `json` or `both`.",
        },
        new()
        {
            Name = LogRotationAge, Kind = SettingKind.Time, DefaultText = "1d", Min = 0, Max = 365 * SettingUnits.Day,
            Context = SettingContext.Reload, Group = SettingGroup.Logging,
            Description = "a JSON log file is closed and a new one started after this long; 0 disables",
            Documentation = "PostgreSQL's `log_rotation_age`. A new day always starts a new file (the name carries the "
                + "date); files of one day are numbered `…_001.json`, `…_002.json`.",
        },
        new()
        {
            Name = LogRotationSize, Kind = SettingKind.Size, DefaultText = "64MB", Min = 0, Max = SettingUnits.Terabyte,
            Context = SettingContext.Reload, Group = SettingGroup.Logging,
            Description = "a JSON log file is not grown past this size; 0 disables",
            Documentation = "PostgreSQL's `log_rotation_size`. A record is never split between files.",
        },
        new()
        {
            Name = LogRetainedFiles, Kind = SettingKind.Int, DefaultText = "30", Min = 1, Max = 100_000,
            Context = SettingContext.Reload, Group = SettingGroup.Logging,
            Description = "how many JSON log files are kept, newest first",
            Documentation = "Older files of the same process kind (`postmaster-…`) are removed when a new file is "
                + "started. The text log is left to logrotate.",
        },
        new()
        {
            Name = LogMinMessages, Kind = SettingKind.Enum, DefaultText = "info",
            AllowedValues = ["debug5", "debug4", "debug3", "debug2", "debug1", "info", "notice", "warning", "error", "log",
                "fatal", "panic"],
            Context = SettingContext.Reload, Group = SettingGroup.Logging,
            Description = "least severe message level written to the server log",
            Documentation = "Levels are in PostgreSQL's server-log order: `log` ranks above `error` and below `fatal`.",
        },
        new()
        {
            Name = ShutdownKillTimeout, Kind = SettingKind.Time, DefaultText = "5s", Min = 0, Max = SettingUnits.Hour,
            Context = SettingContext.Reload, Group = SettingGroup.ShutdownAndCrashRecovery,
            Description = "time children get to exit at shutdown before they are sent SIGKILL",
            Documentation = "0 sends SIGKILL at once.",
        },
        new()
        {
            Name = CrashRecovery, Kind = SettingKind.Enum, DefaultText = "reconcile",
            AllowedValues = ["reconcile", "restart_all"],
            Context = SettingContext.Reload, Group = SettingGroup.ShutdownAndCrashRecovery,
            Description = "what to do after a child crashed",
            Documentation = "`reconcile`: when the dead backend held no lock and was outside any critical section, only "
                + "its dynamic shared memory references are given back and it is restarted per its policy; everyone else "
                + "keeps running. Otherwise, and always with `restart_all`, every backend is stopped (SIGQUIT), all shared "
                + "memory is destroyed and created again, and the static workers start again, as PostgreSQL does.",
        },
        new()
        {
            Name = RestartAfterCrash, Kind = SettingKind.Bool, DefaultText = "on",
            Context = SettingContext.Reload, Group = SettingGroup.ShutdownAndCrashRecovery,
            Description = "recover after a child crash instead of shutting down",
            Documentation = "When off, a crash shuts the server down.",
        },
        new()
        {
            Name = CrashRestartLimit, Kind = SettingKind.Int, DefaultText = "5", Min = 1, Max = CrashRestartLimitLimit,
            Context = SettingContext.Reload, Group = SettingGroup.ShutdownAndCrashRecovery,
            Description = "crash recoveries allowed within crash_restart_interval before the server shuts down",
            Documentation = "Stops a crash loop: one more crash within the interval shuts the server down.",
        },
        new()
        {
            Name = CrashRestartInterval, Kind = SettingKind.Time, DefaultText = "60s", Min = SettingUnits.Second,
            Max = SettingUnits.Day,
            Context = SettingContext.Reload, Group = SettingGroup.ShutdownAndCrashRecovery,
            Description = "window in which crash_restart_limit is counted",
        },
    ];

    private static readonly Dictionary<string, SettingDefinition> s_byName =
        All.ToDictionary(definition => definition.Name, StringComparer.Ordinal);

    /// <summary>Finds a fixed-name setting by its lower-case name.</summary>
    public static bool TryGet(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SettingDefinition? definition)
        => s_byName.TryGetValue(name, out definition);

    /// <summary>The fixed-name setting called <paramref name="name"/>; throws for a name not in the catalogue.</summary>
    public static SettingDefinition Get(string name) => s_byName.TryGetValue(name, out SettingDefinition? definition)
        ? definition
        : throw new ArgumentException($"internal error: \"{name}\" is not in the setting catalogue", nameof(name));

    /// <summary>Section title of <paramref name="group"/> in the default configuration file and the documentation.</summary>
    public static string GroupTitle(SettingGroup group) => group switch
    {
        SettingGroup.SharedMemory => "Shared memory",
        SettingGroup.DynamicSharedMemory => "Dynamic shared memory",
        SettingGroup.Backends => "Backends",
        SettingGroup.Connections => "Connections",
        SettingGroup.Logging => "Logging",
        SettingGroup.ShutdownAndCrashRecovery => "Shutdown and crash recovery",
        SettingGroup.Workers => "Workers",
        _ => throw new ArgumentOutOfRangeException(nameof(group), group, "internal error: setting group without a title"),
    };
}
