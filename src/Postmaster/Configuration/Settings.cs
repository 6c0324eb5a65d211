using Postmaster.Logging;

using System.Diagnostics.CodeAnalysis;

namespace Postmaster.Configuration;

/// <summary>
/// An immutable, validated snapshot of the whole configuration: typed properties for every fixed setting, the
/// configured workers, and for every setting its display text and source (<see cref="All"/>).
/// Created by <see cref="ConfigLoader"/> (or <see cref="CreateDefault"/>); a reload makes a new snapshot and never
/// changes an existing one, so a snapshot can be shared freely between threads.
/// </summary>
internal sealed class Settings
{
    /// <summary>Base of the computed <c>dsm_max_segments</c>: slots that do not depend on the number of backends.</summary>
    public const int DsmSegmentsBase = 64;

    /// <summary>Dynamic shared memory segments allowed per backend in the computed <c>dsm_max_segments</c>.</summary>
    public const int DsmSegmentsPerBackend = 5;

    private readonly Dictionary<string, EffectiveSetting> _byName;

    /// <summary>Builds a snapshot from one value per setting: every fixed setting, and every attribute of each worker.</summary>
    internal Settings(IEnumerable<EffectiveSetting> settings)
    {
        _byName = settings.ToDictionary(setting => setting.Name, StringComparer.Ordinal);
        foreach (SettingDefinition definition in SettingCatalog.All)
        {
            if (!_byName.ContainsKey(definition.Name))
            {
                throw new ArgumentException($"internal error: no value for \"{definition.Name}\"", nameof(settings));
            }
        }

        Workers = BuildWorkers();
        All = SettingCatalog.All.Select(definition => _byName[definition.Name])
            .Concat(Workers.Keys.SelectMany(worker => WorkerSettingCatalog.Attributes
                .Select(template => _byName[WorkerSettingCatalog.FullName(worker, template)])))
            .ToArray();

        SharedMemoryType = (SharedMemoryType)Number(SettingCatalog.SharedMemoryType);
        SharedMemorySize = Number(SettingCatalog.SharedMemorySize);
        MaxBackends = (int)Number(SettingCatalog.MaxBackends);
        HugePages = (HugePages)Number(SettingCatalog.HugePages);
        DynamicSharedMemoryType = (DynamicSharedMemoryType)Number(SettingCatalog.DynamicSharedMemoryType);
        MinDynamicSharedMemory = Number(SettingCatalog.MinDynamicSharedMemory);
        DsmMaxSegments = (int)Number(SettingCatalog.DsmMaxSegments);
        LogDestination = (LogDestination)Number(SettingCatalog.LogDestination);
        LogDirectory = _byName[SettingCatalog.LogDirectory].Value.Text;
        LogMinMessages = (Severity)Number(SettingCatalog.LogMinMessages);
        LogRotation = new Logging.LogRotation(Number(SettingCatalog.LogRotationSize),
            TimeSpan.FromMilliseconds(Number(SettingCatalog.LogRotationAge)), (int)Number(SettingCatalog.LogRetainedFiles));
        ShutdownKillTimeout = TimeSpan.FromMilliseconds(Number(SettingCatalog.ShutdownKillTimeout));
        BackendPoolSize = (int)Number(SettingCatalog.BackendPoolSize);
        BackendPoolPreload = _byName[SettingCatalog.BackendPoolPreload].Value.Text
            .Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        ConnectionWorker = _byName[SettingCatalog.ConnectionWorker].Value.Text;
        ConnectionWorkerArgument = _byName[SettingCatalog.ConnectionWorkerArgument].Value.Text;
        ListenAddresses = ConnectionSettings.SplitList(_byName[SettingCatalog.ListenAddresses].Value.Text);
        Port = (int)Number(SettingCatalog.Port);
        UnixSocketDirectories = ConnectionSettings.SplitList(_byName[SettingCatalog.UnixSocketDirectories].Value.Text);
        UnixSocketPermissions = ConnectionSettings.TryParseOctal(_byName[SettingCatalog.UnixSocketPermissions].Value.Text, out int mode)
            ? mode : 0x1FF;
        ListenBacklog = (int)Number(SettingCatalog.ListenBacklog);
        MaxConnections = (int)Number(SettingCatalog.MaxConnections);
        SpareConnectionBackends = (int)Number(SettingCatalog.SpareConnectionBackends);
        MaxSessionsPerBackend = (int)Number(SettingCatalog.MaxSessionsPerBackend);
        ConnectionSchedulingPolicy = (Shmem.Os.CpuSchedulingPolicy)Number(SettingCatalog.ConnectionSchedulingPolicy);
        ConcurrentSessionsPerBackend = (int)Number(SettingCatalog.ConcurrentSessionsPerBackend);
        ConnectionRejectionMessage = _byName[SettingCatalog.ConnectionRejectionMessage].Value.Text;
        CrashRecovery = (CrashRecovery)Number(SettingCatalog.CrashRecovery);
        RestartAfterCrash = Number(SettingCatalog.RestartAfterCrash) != 0;
        CrashRestartLimit = (int)Number(SettingCatalog.CrashRestartLimit);
        CrashRestartInterval = TimeSpan.FromMilliseconds(Number(SettingCatalog.CrashRestartInterval));
    }

    /// <summary><c>shared_memory_type</c>. Restart.</summary>
    public SharedMemoryType SharedMemoryType { get; }

    /// <summary><c>shared_memory_size</c> in bytes. Restart.</summary>
    public long SharedMemorySize { get; }

    /// <summary><c>max_backends</c>. Restart.</summary>
    public int MaxBackends { get; }

    /// <summary><c>huge_pages</c>. Restart.</summary>
    public HugePages HugePages { get; }

    /// <summary><c>dynamic_shared_memory_type</c>. Restart.</summary>
    public DynamicSharedMemoryType DynamicSharedMemoryType { get; }

    /// <summary><c>min_dynamic_shared_memory</c> in bytes. Restart.</summary>
    public long MinDynamicSharedMemory { get; }

    /// <summary><c>dsm_max_segments</c> as configured; 0 means computed, see <see cref="EffectiveDsmMaxSegments"/>. Restart.</summary>
    public int DsmMaxSegments { get; }

    /// <summary><c>log_destination</c>. Restart.</summary>
    public LogDestination LogDestination { get; }

    /// <summary><c>log_directory</c> as configured; see <see cref="ResolveLogDirectory"/>. Restart.</summary>
    public string LogDirectory { get; }

    /// <summary><c>log_min_messages</c>. Reload.</summary>
    public Severity LogMinMessages { get; }

    /// <summary>log_rotation_size, log_rotation_age, log_retained_files.</summary>
    public Logging.LogRotation LogRotation { get; }

    /// <summary><c>shutdown_kill_timeout</c>. Reload.</summary>
    public TimeSpan ShutdownKillTimeout { get; }

    /// <summary><c>backend_pool_size</c>. Reload.</summary>
    public int BackendPoolSize { get; }

    /// <summary><c>backend_pool_preload</c>, split at commas. Reload.</summary>
    public IReadOnlyList<string> BackendPoolPreload { get; }

    /// <summary><c>connection_worker</c>; empty = the postmaster does not listen. Restart.</summary>
    public string ConnectionWorker { get; }

    /// <summary>Whether the postmaster listens for client connections (a connection worker is set).</summary>
    public bool AcceptsConnections => ConnectionWorker.Length > 0;

    /// <summary>The connection worker's <c>WorkerContext.Argument</c> in every connection backend.</summary>
    public string ConnectionWorkerArgument { get; }

    /// <summary><c>listen_addresses</c>, split at commas. Restart.</summary>
    public IReadOnlyList<string> ListenAddresses { get; }

    /// <summary><c>port</c>. Restart.</summary>
    public int Port { get; }

    /// <summary><c>unix_socket_directories</c>, split at commas (relative ones are relative to the data directory). Restart.</summary>
    public IReadOnlyList<string> UnixSocketDirectories { get; }

    /// <summary><c>unix_socket_permissions</c> as a mode (0 .. 0777). Restart.</summary>
    public int UnixSocketPermissions { get; }

    /// <summary><c>listen_backlog</c>. Restart.</summary>
    public int ListenBacklog { get; }

    /// <summary><c>max_connections</c>. Reload.</summary>
    public int MaxConnections { get; }

    /// <summary><c>spare_connection_backends</c>. Reload.</summary>
    public int SpareConnectionBackends { get; }

    /// <summary><c>max_sessions_per_backend</c>; 0 = no limit. Reload.</summary>
    public int MaxSessionsPerBackend { get; }

    /// <summary><c>connection_scheduling_policy</c>. Reload (connection backends started afterwards).</summary>
    public Shmem.Os.CpuSchedulingPolicy ConnectionSchedulingPolicy { get; }

    /// <summary><c>concurrent_sessions_per_backend</c>: sessions one connection backend serves at once. Reload (connection
    /// backends started afterwards).</summary>
    public int ConcurrentSessionsPerBackend { get; }

    /// <summary><c>connection_rejection_message</c>. Reload.</summary>
    public string ConnectionRejectionMessage { get; }

    /// <summary><c>crash_recovery</c>. Reload.</summary>
    public CrashRecovery CrashRecovery { get; }

    /// <summary><c>restart_after_crash</c>. Reload.</summary>
    public bool RestartAfterCrash { get; }

    /// <summary><c>crash_restart_limit</c>. Reload.</summary>
    public int CrashRestartLimit { get; }

    /// <summary><c>crash_restart_interval</c>. Reload.</summary>
    public TimeSpan CrashRestartInterval { get; }

    /// <summary>The configured workers by lower-case name, enumerated in ordinal name order. Reload.</summary>
    public IReadOnlyDictionary<string, WorkerSettings> Workers { get; }

    /// <summary>Every setting: the fixed ones in catalogue order, then each worker's (by worker name, attribute order).</summary>
    public IReadOnlyList<EffectiveSetting> All { get; }

    /// <summary><c>dsm_max_segments</c>, or when that is 0, <c>64 + 5 * max_backends</c>.</summary>
    public int EffectiveDsmMaxSegments =>
        DsmMaxSegments != 0 ? DsmMaxSegments : DsmSegmentsBase + DsmSegmentsPerBackend * MaxBackends;

    /// <summary>A snapshot with every built-in default and no workers.</summary>
    public static Settings CreateDefault() =>
        new(SettingCatalog.All.Select(definition => EffectiveSetting.FromDefault(definition, definition.Name)));

    /// <summary>The setting called <paramref name="name"/> (case-insensitive), e.g. for a <c>show</c> command.</summary>
    public bool TryGet(string name, [NotNullWhen(true)] out EffectiveSetting? setting) =>
        _byName.TryGetValue(name.ToLowerInvariant(), out setting);

    /// <summary>The setting called <paramref name="name"/>; throws <see cref="KeyNotFoundException"/> when there is none.</summary>
    public EffectiveSetting Get(string name) => TryGet(name, out EffectiveSetting? setting)
        ? setting
        : throw new KeyNotFoundException($"unrecognized configuration parameter \"{name}\"");

    /// <summary><see cref="LogDirectory"/> as an absolute path: relative paths are relative to
    /// <paramref name="dataDirectory"/>.</summary>
    public string ResolveLogDirectory(string dataDirectory) =>
        Path.GetFullPath(Path.Combine(dataDirectory, LogDirectory));

    private long Number(string name) => _byName[name].Value.Number;

    private OrderedWorkerMap BuildWorkers()
    {
        var workers = new Dictionary<string, WorkerSettings>(StringComparer.Ordinal);
        string entryName = WorkerSettingCatalog.Entry;
        foreach (EffectiveSetting setting in _byName.Values)
        {
            if (WorkerSettingCatalog.TrySplit(setting.Name, out string worker, out string attribute) && attribute == entryName)
            {
                workers.Add(worker, BuildWorker(worker));
            }
        }

        return new OrderedWorkerMap(workers);
    }

    private WorkerSettings BuildWorker(string worker)
    {
        EffectiveSetting Attribute(string attribute) =>
            _byName.TryGetValue(WorkerSettingCatalog.FullName(worker, attribute), out EffectiveSetting? setting)
                ? setting
                : throw new ArgumentException($"internal error: worker \"{worker}\" has no \"{attribute}\" value");

        return new WorkerSettings(
            worker,
            Attribute(WorkerSettingCatalog.Entry).Value.Text,
            (int)Attribute(WorkerSettingCatalog.Count).Value.Number,
            Attribute(WorkerSettingCatalog.Argument).Value.Text,
            (RestartPolicy)Attribute(WorkerSettingCatalog.Restart).Value.Number,
            TimeSpan.FromMilliseconds(Attribute(WorkerSettingCatalog.RestartDelay).Value.Number),
            TimeSpan.FromMilliseconds(Attribute(WorkerSettingCatalog.RestartDelayMax).Value.Number),
            TimeSpan.FromMilliseconds(Attribute(WorkerSettingCatalog.StablePeriod).Value.Number),
            (int)Attribute(WorkerSettingCatalog.RestartLimit).Value.Number,
            (WorkerGlobalization)Attribute(WorkerSettingCatalog.Globalization).Value.Number);
    }
}
