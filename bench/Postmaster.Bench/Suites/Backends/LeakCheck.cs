using System.Globalization;
using Postmaster.Shmem.Dsm;

namespace Postmaster.Bench.Suites.Backends;

/// <summary>
/// After the suite: nothing it started may be left. Looks for names in /dev/shm of this run's instances (each
/// instance's POSIX names start with "pm.TAG.", TAG derived from its data directory), System V segments created by a
/// postmaster of this run (cpid in /proc/sysvipc/shm), and live processes running an executable from this run's
/// out/ directory (postmaster, pm-backend, the hello baseline). Other people's instances on the same machine have
/// other tags, pids and executables, so they are not counted.
/// </summary>
internal static class LeakCheck
{
    /// <summary>Pids of every postmaster this run started (creators of its System V segments).</summary>
    public static HashSet<int> PostmasterPids { get; } = new();

    /// <summary>"pm.TAG." of every instance this run started.</summary>
    public static HashSet<string> DevShmPrefixes { get; } = new();

    /// <summary>The instance's POSIX name prefix in /dev/shm (see DsmNames).</summary>
    public static string PosixPrefix(this DsmInstanceTag tag) => $"pm.{tag}.";

    public static List<string> Leftovers()
    {
        var found = new List<string>();
        if (Directory.Exists("/dev/shm"))
            found.AddRange(Directory.EnumerateFileSystemEntries("/dev/shm").Select(p => Path.GetFileName(p))
                .Where(n => DevShmPrefixes.Any(prefix => n.StartsWith(prefix, StringComparison.Ordinal))).Select(n => $"/dev/shm/{n}"));
        foreach (var line in File.ReadLines("/proc/sysvipc/shm").Skip(1))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length > 4 && int.TryParse(f[4], NumberStyles.None, CultureInfo.InvariantCulture, out int cpid) && PostmasterPids.Contains(cpid))
                found.Add($"System V segment key {f[0]} id {f[1]} created by postmaster {cpid}");
        }
        string outDir = Path.GetFullPath(BenchPaths.Out) + "/";
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                continue;
            string? exe;
            try
            {
                exe = new FileInfo(Path.Combine(dir, "exe")).LinkTarget;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            if (exe is not null && exe.StartsWith(outDir, StringComparison.Ordinal))
                found.Add($"process {pid} ({exe})");
        }
        return found;
    }
}
