using Postmaster.Configuration;
using Postmaster.Logging;
using Postmaster.Shmem;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;

namespace Postmaster.Daemon;

/// <summary>
/// Owns the instance's shared memory in the postmaster: the main segment (and, with it, everything created for the
/// instance). <see cref="Create"/> builds it and records it in the lock file; <see cref="RemoveNames"/> removes the OS
/// names (a new instance could start at once) and <see cref="Unmap"/> releases the memory; <see cref="Reinitialize"/>
/// is the crash-restart cycle (PostgreSQL's shmem_exit(1) + CreateSharedMemoryAndSemaphores). Creation and removal
/// happen only while no backend is alive.
/// </summary>
internal sealed class InstanceMemory : IDisposable
{
    private readonly Settings _settings;
    private readonly string _dataDir;
    private readonly FileStat _dirStat;
    private readonly ServerLog _log;
    private readonly DataDirLockFile _lockFile;
    private readonly DsmConfig _dsmConfig;
    private MainSegment? _main;
    private InstanceShmem? _shmem;
    private DsmControl? _dsm;

    public InstanceMemory(Settings settings, string dataDir, FileStat dirStat, ServerLog log, DataDirLockFile lockFile)
    {
        _settings = settings;
        _dataDir = dataDir;
        _dirStat = dirStat;
        _log = log;
        _lockFile = lockFile;
        _dsmConfig = DsmConfig.For(SharedMemoryBootstrap.DsmTypeOf(settings.DynamicSharedMemoryType), dataDir, dirStat);
    }

    public DsmControl Dsm => _dsm ?? throw new InvalidOperationException("dynamic shared memory does not exist");

    public DsmConfig DsmConfig => _dsmConfig;

    public MainSegment Main => _main ?? throw new InvalidOperationException("shared memory does not exist");

    /// <summary>Shared memory exists (false after a failed reinitialisation or the final unmap).</summary>
    public bool IsMapped => _shmem is not null;

    public InstanceShmem Shmem => _shmem ?? throw new InvalidOperationException("shared memory does not exist");

    public string DataDir => _dataDir;

    /// <summary>
    /// The stale postmaster.pid a dead instance left, when the caller saw one (the lock file's checkStale callback):
    /// its line 7/9 name the main segment and types that instance used. Optional: without it, orphans are still found
    /// by probing every segment type from the data directory's first key. Used by the next <see cref="Create"/> only.
    /// </summary>
    public LockFileContents? PreviousLockFile { get; set; }

    public FileStat DataDirStat => _dirStat;

    /// <summary>Creates the main segment and every module in it, removes whatever a dead instance of this data
    /// directory left (its main segment, every DSM segment its control segment lists, and every object tagged with
    /// this instance that no table lists), creates the DSM control segment, and records it all in postmaster.pid.</summary>
    public void Create()
    {
        var shmemLog = new ShmemLogAdapter(_log);
        var evidence = new DsmOrphanEvidence();
        var previous = PreviousLockFile;
        PreviousLockFile = null;
        if (previous is not null)
            evidence.Add(previous.Pid, previous.StartTime);
        // A dead instance's main segments of any type (shared_memory_type may have changed since), each handing over
        // the DSM control segment its header names; then the configured type's key probing, which cleans up what
        // appears at its keys meanwhile (and refuses a segment that is still in use).
        var oldControls = new List<DsmHandle>();
        var orphans = MainSegmentOrphans.RemoveAll(_dataDir, _dirStat, SharedMemoryBootstrap.RecordedSegmentOf(previous, SharedMemoryBootstrap.KindOf(_settings.SharedMemoryType)), shmemLog,
            orphan => oldControls.Add(new DsmHandle(orphan.Header.DsmControlHandle)), evidence);
        if (orphans.Removed > 0)
            _log.Debug1($"removed {orphans.Removed} main shared memory segment{(orphans.Removed == 1 ? "" : "s")} of a previous postmaster");
        _main = SharedMemoryBootstrap.Create(_settings, _dataDir, _dirStat, _log, orphan =>
        {
            MainSegmentOrphans.CollectEvidence(orphan.Kind, orphan.Key, orphan.Id, _dirStat, orphan.Header, evidence);
            oldControls.Add(new DsmHandle(orphan.Header.DsmControlHandle));
        });
        try
        {
            _shmem = InstanceShmem.Wrap(_main);
            var cleanup = DsmOrphanCleanup.Run(_dsmConfig, oldControls, shmemLog, evidence);
            if (cleanup.ListedRemoved + cleanup.UntrackedRemoved + cleanup.Failures > 0)
                _log.Log(cleanup.Describe());
            _dsm = DsmControl.Create(_shmem, _dsmConfig, _settings.EffectiveDsmMaxSegments, shmemLog);
            _main.Header.DsmControlHandle = _dsm.Handle.Value;
            _log.Debug1($"created dynamic shared memory control segment {_dsm.Handle} for {_settings.EffectiveDsmMaxSegments} segments");
        }
        catch
        {
            RemoveNames();
            Unmap();
            throw;
        }
        _lockFile.SetSharedMemory(Descriptor);
    }

    /// <summary>Where this instance's shared memory is now (the lock file and every backend's parameters say the same).</summary>
    public SharedMemoryDescriptor Descriptor =>
        new(Main.Mapping.Kind, Main.Mapping.Key, Main.Mapping.Id, Main.Mapping.Size, _dsmConfig.Type);

    /// <summary>Publishes log_min_messages in the main header, where backends read it (a reload reaches them).</summary>
    public void PublishLogLevel(Logging.Severity level) => Volatile.Write(ref Main.Header.LogMinMessages, (int)level + 1);

    /// <summary>
    /// Checks everything the supervisor depends on in shared memory: the main segment and its modules
    /// (<see cref="InstanceShmem.Validate"/>), the DSM control handle the main header publishes (backends attach the
    /// control segment through it) and the DSM control segment (<see cref="DsmControl.Validate"/>). Null when
    /// valid, else the first problem (e.g. <c>backend slot array: wrong magic number 0x00000000 (expected
    /// 0x504D4253)</c>). Never throws; cheap enough to call after every backend exit that is not a clean one.
    /// </summary>
    public string? Validate()
    {
        if (_shmem is null)
            return "shared memory does not exist";
        if (_shmem.Validate() is { } problem)
            return problem;
        if (_dsm is null)
            return null;
        uint published = _shmem.Main.Header.DsmControlHandle;
        if (published != _dsm.Handle.Value)
            return $"{Postmaster.Shmem.Layout.MainHeader.StructureName}: DSM control handle {published} is not {_dsm.Handle}, the control segment's";
        return _dsm.Validate();
    }

    /// <summary>The processes of this instance as its main segment records them (this postmaster and the backends
    /// still in their slots), for the DSM clean-up of a full restart.</summary>
    private DsmOrphanEvidence EvidenceOfThisInstance()
    {
        var evidence = new DsmOrphanEvidence();
        if (_shmem is not null)
            MainSegmentOrphans.CollectEvidence(_shmem, evidence);
        return evidence;
    }

    /// <summary>Removes the OS names of everything (segments disappear once unmapped). Never throws.</summary>
    public void RemoveNames()
    {
        if (_dsm is not null)
        {
            var summary = _dsm.DestroyAll(EvidenceOfThisInstance()); // never throws; a corrupt control segment is logged inside
            if (summary.SegmentsRemoved + summary.Failures > 0)
                _log.Debug1($"destroyed {summary.SegmentsRemoved} dynamic shared memory segments ({summary.Failures} failures)");
            _dsm.Dispose();
            _dsm = null;
        }
        if (_main is null)
            return;
        int err = _main.Destroy();
        if (err != 0)
            _log.Warning($"could not remove shared memory segment (key {_main.Mapping.Key}, ID {_main.Mapping.Id}): errno {err}");
        else
            _log.Debug1($"removed main shared memory segment (key {_main.Mapping.Key}, ID {_main.Mapping.Id})");
    }

    /// <summary>Unmaps everything (after <see cref="RemoveNames"/>).</summary>
    public void Unmap()
    {
        _main?.Dispose();
        _main = null;
        _shmem = null;
    }

    /// <summary>The crash-restart cycle: everything is destroyed and created anew (new segment, new control handle).</summary>
    public void Reinitialize(Logging.Severity logLevel)
    {
        RemoveNames();
        Unmap();
        Create();
        PublishLogLevel(logLevel);
    }

    public void Dispose()
    {
        RemoveNames();
        Unmap();
    }
}
