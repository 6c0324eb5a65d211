using Postmaster.Configuration;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Os;
using Postmaster.Supervision;

namespace Postmaster.Daemon;

/// <summary>The block a new backend reads from its descriptor 3: where shared memory is, what to run, how to log.</summary>
internal static class BackendParametersFactory
{
    /// <summary>Backends send their records to the log collector's pipe (pm-backend's BackendLog).</summary>
    public const string LogPipeDestination = "collector";

    public static BackendParameters For(Settings settings, InstanceMemory memory, int slot, long generation, WorkerSpec spec,
        bool pooled, IReadOnlyList<string> preload)
    {
        var main = memory.Main;
        var shmem = memory.Descriptor;
        return new BackendParameters
        {
            DataDir = memory.DataDir,
            DataDirDevice = memory.DataDirStat.Device,
            DataDirInode = memory.DataDirStat.Inode,
            SegmentKind = shmem.KindName,
            SegmentKey = shmem.Key,
            SegmentId = shmem.Id,
            SegmentSize = shmem.Size,
            DsmControlHandle = main.Header.DsmControlHandle,
            DsmType = shmem.DsmTypeName,
            Slot = slot,
            Generation = generation,
            PostmasterPid = ProcessControl.CurrentPid,
            WorkerName = spec.Name,
            Entry = spec.Entry,
            Argument = spec.Argument,
            Pooled = pooled,
            LogDestination = LogPipeDestination,
            LogLevel = settings.LogMinMessages.ToString().ToLowerInvariant(),
            Preload = preload.ToList(),
        };
    }
}
