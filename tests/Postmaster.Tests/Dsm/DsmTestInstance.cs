using Xunit;
using System.Collections.Concurrent;
using Postmaster.Shmem;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Registry;
using Postmaster.Shmem.Segments;
using Postmaster.Tests.Support;

namespace Postmaster.Tests.Dsm;

/// <summary>Collects what the DSM layer logs, for assertions.</summary>
internal sealed class ListLogger : IShmemLogger
{
    private readonly ConcurrentQueue<(ShmemLogLevel Level, string Message)> _lines = new();

    public IReadOnlyList<(ShmemLogLevel Level, string Message)> Lines => _lines.ToList();

    public void Write(ShmemLogLevel level, string message) => _lines.Enqueue((level, message));

    public bool Contains(ShmemLogLevel level, string fragment) =>
        _lines.Any(l => l.Level == level && l.Message.Contains(fragment, StringComparison.Ordinal));
}

/// <summary>
/// One instance for one test: a unique data directory under /tmp, a real POSIX main segment laid out by
/// <see cref="InstanceLayout.Plan"/> (optionally with a preallocated DSM region) and a DSM control segment of the
/// chosen type, its handle published in the main header like the supervisor does. <see cref="Session"/> opens
/// backend-side sessions on chosen slots, <see cref="Registry"/> DSM registries on them, and
/// <see cref="SimulateFullRestart"/> replays the supervisor's full restart. Dispose, also after a failure: disposes
/// the sessions, destroys all DSM (<see cref="DsmControl.DestroyAll"/>), the main segment and the directory, and then
/// fails the test if any object tagged with the instance is still there (removing it first, so nothing is left either
/// way).
/// </summary>
internal sealed class DsmTestInstance : IDisposable
{
    /// <summary>Every implementation, and POSIX with a main region (second value: min_dynamic_shared_memory).</summary>
    public static TheoryData<DsmKind, long> Kinds => new()
    {
        { DsmKind.Posix, 0 },
        { DsmKind.SysV, 0 },
        { DsmKind.Mmap, 0 },
        { DsmKind.Posix, 1024 * 1024 }, // main region
    };

    public const int DefaultMaxBackends = 8;
    private static int s_counter;
    private readonly List<DsmSession> _sessions = new();
    private readonly List<LockOwner> _owners = new();
    private readonly InstanceLimits _limits;
    private readonly int _controlCapacity;
    private bool _controlAbandoned;

    public DsmTestInstance(string label, DsmType type, int maxBackends = DefaultMaxBackends, long mainRegion = 0, int? capacity = null,
        int registryCapacity = DsmRegistryTable.DefaultCapacity)
    {
        DataDir = Path.Combine(Path.GetTempPath(), $"pmdsm-{Environment.ProcessId}-{Interlocked.Increment(ref s_counter)}-{label}");
        if (Directory.Exists(DataDir))
            Directory.Delete(DataDir, recursive: true);
        Directory.CreateDirectory(DataDir);
        Type = type;
        MaxBackends = maxBackends;
        DataDirStat = FileStat.TryStat(DataDir)!.Value;
        Config = DsmConfig.For(type, DataDir, DataDirStat);
        _limits = new InstanceLimits(maxBackends, FreeSpace: 64 * 1024, DsmMainRegionSize: mainRegion,
            DsmRegistryCapacity: registryCapacity);
        _controlCapacity = capacity ?? DsmControlLayout.DefaultCapacity(maxBackends);
        try
        {
            (Main, Instance, Control) = CreateShmem();
        }
        catch
        {
            Directory.Delete(DataDir, recursive: true);
            throw;
        }
    }

    public string DataDir { get; }

    public DsmType Type { get; }

    public int MaxBackends { get; }

    public FileStat DataDirStat { get; }

    public DsmConfig Config { get; }

    public MainSegment Main { get; private set; }

    public InstanceShmem Instance { get; private set; }

    public DsmControl Control { get; private set; }

    public ListLogger Log { get; } = new();

    public string TypeName => Type.ToString().ToLowerInvariant();

    /// <summary>A backend-side session on <paramref name="slot"/> (create it on the thread that uses its owner).</summary>
    public DsmSession Session(int slot)
    {
        var owner = Instance.Owners.CreateOwner(slot, Instance.Tranches);
        _owners.Add(owner);
        var session = new DsmSession(Instance, owner, Config, Log);
        _sessions.Add(session);
        return session;
    }

    /// <summary>A DSM registry on <paramref name="slot"/> (its own lock owner and session; create it on the thread that
    /// uses it), as a backend host builds one.</summary>
    public DsmRegistry Registry(int slot)
    {
        var session = Session(slot);
        return new DsmRegistry(Instance, _owners[^1], session);
    }

    /// <summary>
    /// The supervisor's full restart (crash with shared state that cannot be trusted), once every backend is gone:
    /// sessions opened here are disposed (the backends' exit), <see cref="DsmControl.DestroyAll"/> removes every
    /// segment, pinned ones included, the main segment is destroyed and a new one created with a new control segment.
    /// Sessions, registries and children from before are unusable afterwards.
    /// </summary>
    public void SimulateFullRestart()
    {
        foreach (var session in _sessions)
            session.Dispose();
        foreach (var owner in _owners)
            owner.Dispose();
        _sessions.Clear();
        _owners.Clear();
        Control.DestroyAll();
        Control.Dispose();
        Main.Destroy();
        Main.Dispose();
        (Main, Instance, Control) = CreateShmem();
    }

    private (MainSegment, InstanceShmem, DsmControl) CreateShmem()
    {
        var main = MainSegment.Create(new MainSegmentSpec(SegmentKind.Posix, DataDir, DataDirStat, HugePagesMode.Off),
            InstanceLayout.Plan(_limits), NullShmemLogger.Instance);
        try
        {
            var instance = InstanceShmem.Wrap(main);
            var control = DsmControl.Create(instance, Config, _controlCapacity, Log);
            main.Header.DsmControlHandle = control.Handle.Value;
            return (main, instance, control);
        }
        catch
        {
            main.Destroy();
            main.Dispose();
            throw;
        }
    }

    /// <summary>The control segment's rows for <paramref name="handle"/>, or null when it has none.</summary>
    public DsmSegmentInfo? Row(DsmHandle handle) => Control.Inspect().SingleOrDefault(r => r.Handle == handle);

    /// <summary>Arguments for the TestChild "dsm" scenario on <paramref name="slot"/>.</summary>
    public string[] ChildArgs(int slot) =>
        [$"datadir={DataDir}", $"key={Main.Mapping.Key}", $"id={Main.Mapping.Id}", $"type={TypeName}", $"slot={slot}"];

    /// <summary>Starts a TestChild <paramref name="scenario"/> ("dsm", "registry") on <paramref name="slot"/> and waits
    /// until it is ready.</summary>
    public ChildProcess StartChild(int slot, string scenario = "dsm")
    {
        var child = ChildProcess.TestChild(scenario, ChildArgs(slot));
        try
        {
            child.WaitForLine("ready");
        }
        catch
        {
            child.Dispose();
            throw;
        }
        return child;
    }

    /// <summary>Simulates the supervisor dying: unmaps the control segment without destroying anything and returns
    /// its handle (what the old main header would say). Dispose then cleans up by orphan cleanup.</summary>
    public DsmHandle AbandonControl()
    {
        _controlAbandoned = true;
        Control.Dispose();
        return Control.Handle;
    }

    /// <summary>After a full restart: the new control segment (the old one must have been destroyed).</summary>
    public void ReplaceControl(DsmControl control) => Control = control;

    /// <summary>Every object tagged with this instance that exists now.</summary>
    public IReadOnlyList<DsmOsObject> Tagged() => DsmOrphanCleanup.FindTagged(Config);

    public void Dispose()
    {
        var problems = new List<string>();
        foreach (var session in _sessions)
        {
            try
            {
                session.Dispose();
            }
            catch (Exception e)
            {
                problems.Add($"session of slot {session.Slot}: {e.Message}");
            }
        }
        foreach (var owner in _owners)
            owner.Dispose();
        if (!_controlAbandoned)
            Control.DestroyAll();
        Control.Dispose();
        Main.Destroy();
        Main.Dispose();
        var leftovers = Tagged();
        if (leftovers.Count > 0)
        {
            problems.Add("left behind: " + string.Join(", ", leftovers));
            DsmOrphanCleanup.Run(Config, DsmHandle.Invalid);
        }
        Directory.Delete(DataDir, recursive: true);
        if (problems.Count > 0)
            throw new Xunit.Sdk.XunitException(string.Join("; ", problems));
    }
}
