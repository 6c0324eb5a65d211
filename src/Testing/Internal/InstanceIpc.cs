using System.Globalization;
using Postmaster.Shmem;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;

namespace Postmaster.Testing.Internal;

/// <summary>
/// Everything the harness takes from Postmaster.Shmem, in this one file: what the CLI cannot tell (how an instance
/// names its IPC objects, to find and remove what it left; a pidfd, to signal a process without ever reaching one
/// that reused its pid). Everything else comes from the product's command line and documented files.
/// </summary>
internal static class InstanceIpc
{
    private const string DevShm = "/dev/shm";
    private const string SysVTable = "/proc/sysvipc/shm"; // columns: key shmid perms size cpid lpid nattch uid ...

    /// <summary>Whether a main segment still exists under its key. A SysV segment already removed (IPC_RMID) but
    /// still mapped by an exiting process shows with key 0 until the last detach: that one no longer counts.</summary>
    public static bool MainSegmentExists(string type, long key, long id) => type == "posix"
        ? File.Exists(DevShm + MainSegment.PosixName(key))
        : SysVIdOfKey(key) == id;

    /// <summary>Removes a main segment (best effort: it may be gone already).</summary>
    public static void RemoveMainSegment(string type, long key, long id)
    {
        if (type == "posix")
        {
            File.Delete(DevShm + MainSegment.PosixName(key));
            return;
        }
        using var segment = MappedSegment.AttachSysV((int)id);
        segment?.Destroy();
    }

    /// <summary>Every dynamic shared memory object tagged with the instance of <paramref name="dataDirectory"/>, in
    /// any implementation (POSIX names, SysV segments, files in <c>pm_dynshmem</c>), described for a message. Empty
    /// when the directory no longer exists (the tag comes from its device and inode).</summary>
    public static IReadOnlyList<string> DsmObjects(string dataDirectory) =>
        ConfigOf(dataDirectory) is { } config
            ? DsmOrphanCleanup.FindTagged(config).Select(o => $"dynamic shared memory {o.Implementation.ToString().ToLowerInvariant()} \"{o.Name}\"").ToList()
            : [];

    /// <summary>Removes the instance's DSM objects nobody has attached (the product's own orphan cleanup).</summary>
    public static void RemoveDsmObjects(string dataDirectory)
    {
        if (ConfigOf(dataDirectory) is { } config)
            DsmOrphanCleanup.Run(config, DsmHandle.Invalid);
    }

    private static DsmConfig? ConfigOf(string dataDirectory) =>
        FileStat.TryStat(dataDirectory) is { } stat ? DsmConfig.For(DsmType.Posix, dataDirectory, stat) : null;

    private static long? SysVIdOfKey(long key)
    {
        foreach (var line in File.ReadLines(SysVTable).Skip(1))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length > 1 && long.TryParse(f[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long k) && k == key &&
                long.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out long id))
                return id;
        }
        return null;
    }

    /// <summary>
    /// Sends <paramref name="signal"/> to <paramref name="pid"/> only if <paramref name="isOurs"/>, evaluated after a
    /// pidfd on the pid was opened, says so: the signal then reaches the process that was checked or nobody, never a
    /// process that reused the pid meanwhile. Pid 1 and below are never signalled. Returns null when it was sent,
    /// else why not.
    /// </summary>
    public static string? SignalIf(int pid, UnixSignal signal, Func<string?> isOurs)
    {
        if (pid <= 1)
            return $"refusing to signal pid {pid}";
        using var handle = ProcessHandle.TryOpen(pid);
        if (handle is null)
            return $"there is no process {pid}";
        if (isOurs() is { } notOurs)
            return notOurs;
        return handle.Signal(Number(signal)) ? null : $"process {pid} exited before the signal";
    }

    private static int Number(UnixSignal signal) => signal switch
    {
        UnixSignal.SIGHUP => Signals.SIGHUP,
        UnixSignal.SIGINT => Signals.SIGINT,
        UnixSignal.SIGQUIT => Signals.SIGQUIT,
        UnixSignal.SIGKILL => Signals.SIGKILL,
        UnixSignal.SIGSEGV => Signals.SIGSEGV,
        UnixSignal.SIGTERM => Signals.SIGTERM,
        UnixSignal.SIGCONT => Signals.SIGCONT,
        UnixSignal.SIGSTOP => Signals.SIGSTOP,
        _ => throw new ArgumentOutOfRangeException(nameof(signal), signal, "not a signal the harness sends"),
    };
}
