namespace Postmaster.Shmem.Os;

/// <summary>
/// Finds the processes that have a shared-memory object mapped, by reading /proc/PID/maps: SysV segments show as
/// "/SYSV%08x" (the key in hex), POSIX objects as "/dev/shm/NAME", files by their path. Used only for messages
/// ("still in use by PID 123"); the decision itself comes from nattch or the attach lock. Processes whose maps we
/// may not read are skipped.
/// </summary>
internal static class AttachedProcesses
{
    public static string SysVMarker(long key) => $"/SYSV{(uint)key:x8}";

    public static string PosixMarker(string shmName) => "/dev/shm" + shmName;

    public static IReadOnlyList<int> Find(string marker)
    {
        var pids = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid) || pid == ProcessControl.CurrentPid)
                continue;
            try
            {
                foreach (var line in File.ReadLines(Path.Combine(dir, "maps")))
                {
                    if (line.Contains(marker, StringComparison.Ordinal))
                    {
                        pids.Add(pid);
                        break;
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // the process exited while we looked, or its maps are not ours to read
            }
        }
        return pids;
    }
}
