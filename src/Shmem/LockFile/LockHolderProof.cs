using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.LockFile;

/// <summary>
/// Proves that a process holds the OFD write lock on the lock file. F_OFD_GETLK cannot tell (its l_pid is -1 for OFD
/// locks, and /proc/locks shows -1 too), so the proof comes from the process itself: one of its descriptors,
/// /proc/PID/fd/N, is the lock file (same device and inode), and that descriptor's /proc/PID/fdinfo/N lists the lock
/// ("lock: 1: OFDLCK ADVISORY WRITE -1 MAJ:MIN:INODE 0 EOF"): the kernel lists there exactly the locks held through
/// that open file description. Reading another process's fd and fdinfo needs the same user (or root), which the
/// commands that signal the server need anyway. Nothing else (a pid in a file, a process name) is trusted.
/// </summary>
internal static class LockHolderProof
{
    /// <summary>Null when <paramref name="pid"/> holds a write OFD lock on the file <paramref name="lockFile"/>;
    /// otherwise why not, as a clause ("which does not hold the lock").</summary>
    public static string? Check(int pid, FileStat lockFile)
    {
        IEnumerable<string> fds;
        try
        {
            fds = Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").ToList();
        }
        catch (DirectoryNotFoundException)
        {
            return "which does not exist";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"whose descriptors cannot be inspected ({OsError.Describe(e)})";
        }
        foreach (var link in fds)
        {
            FileStat? target;
            try
            {
                target = FileStat.TryStat(link);
            }
            catch (OsCallException)
            {
                continue; // closed meanwhile, or not ours to stat
            }
            if (target is not { } t || t.Device != lockFile.Device || t.Inode != lockFile.Inode)
                continue;
            string info;
            try
            {
                info = File.ReadAllText($"/proc/{pid}/fdinfo/{System.IO.Path.GetFileName(link)}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            string inode = ":" + lockFile.Inode + " ";
            foreach (var line in info.Split('\n'))
                if (line.StartsWith("lock:", StringComparison.Ordinal) && line.Contains(" OFDLCK ", StringComparison.Ordinal) &&
                    line.Contains(" WRITE ", StringComparison.Ordinal) && line.Contains(inode, StringComparison.Ordinal))
                    return null;
        }
        return "which does not hold the lock";
    }

    /// <summary>Every process that holds the lock on <paramref name="lockFile"/> (a scan of /proc, for messages only:
    /// when line 1 of the file does not name the holder). Processes we may not inspect are skipped.</summary>
    public static IReadOnlyList<int> FindHolders(FileStat lockFile)
    {
        var pids = new List<int>();
        IEnumerable<string> dirs;
        try
        {
            dirs = Directory.EnumerateDirectories("/proc").ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return pids;
        }
        foreach (var dir in dirs)
            if (int.TryParse(System.IO.Path.GetFileName(dir), out int pid) && pid != ProcessControl.CurrentPid && Check(pid, lockFile) is null)
                pids.Add(pid);
        return pids;
    }
}
