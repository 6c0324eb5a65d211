using System.Globalization;

namespace Postmaster.Bench.Suites.Backends;

/// <summary>A process's memory from /proc/PID/smaps_rollup, in kB. <see cref="Pss"/> divides every shared page by
/// the number of processes mapping it; <see cref="Private"/> (USS) counts only pages no other process maps.</summary>
internal readonly record struct MemoryUse(long Rss, long Pss, long PssAnon, long PssFile, long PssShmem, long Private);

/// <summary>Readers for /proc: memory (smaps_rollup) and CPU time (stat, schedstat).</summary>
internal static class ProcStats
{
    /// <summary>USER_HZ: the unit of utime and stime in /proc/PID/stat (100 on every Linux x86-64 and arm64 build).</summary>
    public const int ClockTicksPerSecond = 100;

    public static MemoryUse Memory(int pid)
    {
        long rss = 0, pss = 0, anon = 0, file = 0, shmem = 0, priv = 0;
        foreach (var line in File.ReadLines($"/proc/{pid}/smaps_rollup"))
        {
            int colon = line.IndexOf(':');
            if (colon < 0)
                continue;
            var parts = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 0 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long kb))
                continue;
            switch (line[..colon])
            {
                case "Rss": rss = kb; break;
                case "Pss": pss = kb; break;
                case "Pss_Anon": anon = kb; break;
                case "Pss_File": file = kb; break;
                case "Pss_Shmem": shmem = kb; break;
                case "Private_Clean":
                case "Private_Dirty": priv += kb; break;
            }
        }
        return new MemoryUse(rss, pss, anon, file, shmem, priv);
    }

    /// <summary>USS (Private_Clean + Private_Dirty, kB) per mapping from /proc/PID/smaps: files by name (without their
    /// directory), "[anon]", "[heap]", "[stack]", and "memfd:doublemapper" (the runtime's W^X double-mapped executable
    /// memory: stubs, precode, JIT-compiled code).</summary>
    public static Dictionary<string, long> PrivateByMapping(int pid)
    {
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        string current = "[anon]";
        foreach (var line in File.ReadLines($"/proc/{pid}/smaps"))
        {
            int space = line.IndexOf(' ');
            if (space > 0 && line.IndexOf('-') is > 0 and var dash && dash < space && line[..dash].All(Uri.IsHexDigit))
            {
                var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
                string name = fields.Length >= 6 ? fields[5].Trim() : "[anon]";
                current = name.StartsWith("/memfd:doublemapper", StringComparison.Ordinal) ? "memfd:doublemapper"
                    : name.StartsWith('/') ? Path.GetFileName(name) : name;
                continue;
            }
            if (line.StartsWith("Private_Clean:", StringComparison.Ordinal) || line.StartsWith("Private_Dirty:", StringComparison.Ordinal))
            {
                var kb = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
                result[current] = result.GetValueOrDefault(current) + kb;
            }
        }
        return result;
    }

    /// <summary>utime + stime of the whole process (all threads, living and exited), in clock ticks.</summary>
    public static long CpuTicks(int pid)
    {
        var text = File.ReadAllText($"/proc/{pid}/stat");
        var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        // fields[0] is field 3 (state), so field n is fields[n - 3]: utime is 14, stime 15.
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    /// <summary>Time on CPU in nanoseconds of each current thread of the process (/proc/PID/task/TID/schedstat).</summary>
    public static Dictionary<int, long> ThreadCpuNanoseconds(int pid)
    {
        var result = new Dictionary<int, long>();
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            try
            {
                var first = File.ReadAllText(Path.Combine(task, "schedstat")).Split(' ')[0];
                result[int.Parse(Path.GetFileName(task), CultureInfo.InvariantCulture)] = long.Parse(first, CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
                // the thread ended meanwhile
            }
        }
        return result;
    }

    /// <summary>CPU nanoseconds used between two <see cref="ThreadCpuNanoseconds"/> samples: threads present in both
    /// count their difference, new threads all of theirs; threads that ended in between are lost (their share of
    /// the window is not in either sample).</summary>
    public static long CpuNanosecondsBetween(Dictionary<int, long> before, Dictionary<int, long> after) =>
        after.Sum(kv => kv.Value - before.GetValueOrDefault(kv.Key));

    /// <summary>Threads of the process (/proc/PID/task).</summary>
    public static int Threads(int pid) => Directory.EnumerateDirectories($"/proc/{pid}/task").Count();

    /// <summary>Whether the process has the JIT compiler (libclrjit.so) mapped.</summary>
    public static bool MapsJit(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/maps").Contains("libclrjit.so", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }
}
