using Postmaster.Configuration;
using Postmaster.Logging;
using Postmaster.Shmem;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Layout;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;

namespace Postmaster.Daemon;

/// <summary>
/// Builds the main segment (PostgreSQL's CreateSharedMemoryAndSemaphores): collects the modules' requests into a
/// <see cref="ShmemPlan"/>, logs the per-module breakdown at DEBUG1, creates the segment (cleaning up what a dead
/// instance left at the same key), and initialises every module in order.
/// </summary>
internal static class SharedMemoryBootstrap
{
    public static SegmentKind KindOf(SharedMemoryType t) => t == SharedMemoryType.SysV ? SegmentKind.SysV : SegmentKind.Posix;

    public static HugePagesMode HugePagesOf(HugePages h) => h switch
    {
        HugePages.On => HugePagesMode.On,
        HugePages.Try => HugePagesMode.Try,
        _ => HugePagesMode.Off,
    };

    /// <summary>The plan for these settings. Modules add their requests here as they are built.</summary>
    public static ShmemPlan Plan(Settings settings) =>
        InstanceLayout.Plan(new InstanceLimits(settings.MaxBackends, settings.SharedMemorySize,
            DsmMainRegionSize: settings.MinDynamicSharedMemory));

    /// <summary>The main segment a lock file records (line 7 key, line 9 type; <paramref name="fallback"/> when line 9
    /// is missing), or null when it records none.</summary>
    public static RecordedSegment? RecordedSegmentOf(Shmem.LockFile.LockFileContents? contents, SegmentKind fallback)
    {
        if (contents?.ShmKey is not long key || key <= 0)
            return null;
        return new RecordedSegment(SharedMemoryDescriptor.KindOr(contents.ShmType, fallback), key);
    }

    public static DsmType DsmTypeOf(DynamicSharedMemoryType t) => t switch
    {
        DynamicSharedMemoryType.SysV => DsmType.SysV,
        DynamicSharedMemoryType.Mmap => DsmType.Mmap,
        _ => DsmType.Posix,
    };

    public static MainSegment Create(Settings settings, string dataDir, FileStat dataDirStat, ServerLog log,
        Action<MainSegmentOrphan> onOrphan)
    {
        var plan = Plan(settings);
        long total = plan.TotalSize();
        if (log.IsEnabled(Severity.Debug1))
        {
            foreach (var (part, bytes) in plan.Breakdown())
                log.Debug1($"shared memory request \"{part}\": {bytes} bytes");
            log.Debug1($"main shared memory segment: {total} bytes in total");
        }
        var spec = new MainSegmentSpec(KindOf(settings.SharedMemoryType), dataDir, dataDirStat, HugePagesOf(settings.HugePages));
        return MainSegment.Create(spec, plan, new ShmemLogAdapter(log), orphan =>
        {
            log.Debug1($"orphaned main segment (key {orphan.Key}) was created by PID {orphan.Header.CreatorPid}" +
                       (orphan.Header.DsmControlHandle != 0 ? $", DSM control segment {orphan.Header.DsmControlHandle}" : ""));
            onOrphan(orphan);
        });
    }
}
