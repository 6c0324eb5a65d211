using Postmaster.Shmem.Instance;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;
using Postmaster.Testing;

namespace Postmaster.Tests.Support;

/// <summary>What this suite reads of a cluster below the command line: its lock file as the library parses it, its
/// main segment attached in the test process, and whether the lock is held (without starting a process).</summary>
internal static class ClusterInternals
{
    public static LockFileContents? LockFile(this PostmasterCluster pm) => DataDirLockFile.Probe(pm.DataDirectory).Contents;

    /// <summary>Whether a live process holds the data directory's lock (the kernel's OFD lock).</summary>
    public static bool LockHeld(this PostmasterCluster pm) => DataDirLockFile.Probe(pm.DataDirectory).Locked;

    /// <summary>Attaches the running instance's main segment, as its lock file describes it (the test disposes it).</summary>
    public static InstanceShmem AttachShmem(this PostmasterCluster pm)
    {
        var d = pm.LockFile()?.SharedMemory ?? throw new InvalidOperationException("the lock file names no shared memory");
        return InstanceShmem.Attach(d.Kind, d.Key, d.Id, FileStat.TryStat(pm.DataDirectory)!.Value);
    }
}
