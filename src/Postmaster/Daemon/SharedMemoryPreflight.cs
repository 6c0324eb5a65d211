using System.Globalization;
using Postmaster.Configuration;
using Postmaster.Logging;

namespace Postmaster.Daemon;

/// <summary>
/// The start-up check of the machine's shared-memory limits against what the configuration can need, before the
/// main segment is created: free space on <c>/dev/shm</c> (POSIX segments live there; Docker gives a container
/// 64 MB by default, PostgreSQL users' most common shared-memory failure), and the System V limits
/// <c>kernel.shmmax</c> (largest segment) and <c>kernel.shmall</c> (all segments together, in pages). Each shortfall
/// is one WARNING with the numbers and the fix; the start goes on (the creation itself fails with its own error
/// when the memory really is not there, and a DSM shortfall only shows when segments are created).
/// </summary>
internal static class SharedMemoryPreflight
{
    /// <summary>The least free space on /dev/shm that is recommended when dynamic shared memory segments are
    /// created there (dynamic_shared_memory_type = posix): they are sized by the workers, not by the configuration.</summary>
    public const long DsmHeadroomBytes = 128L << 20;

    public const string DevShm = "/dev/shm";

    /// <summary>What the machine offers, as read at start-up; null where it could not be read.</summary>
    /// <param name="DevShmFreeBytes">statvfs of /dev/shm: bytes available (null: not mounted or not readable).</param>
    /// <param name="ShmMaxBytes">kernel.shmmax.</param>
    /// <param name="ShmAllBytes">kernel.shmall × page size (saturated).</param>
    /// <param name="SysVInUseBytes">Sum of the existing System V segments (/proc/sysvipc/shm) in this IPC namespace.</param>
    public sealed record Facts(long? DevShmFreeBytes, long? ShmMaxBytes, long? ShmAllBytes, long? SysVInUseBytes);

    public sealed record Finding(string Message, string Detail, string Hint);

    public static void Run(Settings settings, long mainSegmentBytes, ServerLog log)
    {
        foreach (var f in Check(settings.SharedMemoryType, settings.DynamicSharedMemoryType, mainSegmentBytes, Observe()))
            log.Warning(f.Message, f.Detail, f.Hint);
    }

    /// <summary>The findings for a main segment of <paramref name="mainSegmentBytes"/> of the given types on a machine
    /// with <paramref name="facts"/>. Pure: the seam the unit tests use.</summary>
    public static IReadOnlyList<Finding> Check(SharedMemoryType mainType, DynamicSharedMemoryType dsmType, long mainSegmentBytes, Facts facts)
    {
        var findings = new List<Finding>();
        bool mainPosix = mainType == SharedMemoryType.Posix;
        bool dsmPosix = dsmType == DynamicSharedMemoryType.Posix;
        if (mainPosix || dsmPosix)
        {
            long needed = (mainPosix ? mainSegmentBytes : 0) + (dsmPosix ? DsmHeadroomBytes : 0);
            string parts = string.Join(" and ", new[]
            {
                mainPosix ? $"the main shared memory segment (shared_memory_type = posix) needs {Bytes(mainSegmentBytes)} there" : null,
                dsmPosix ? $"dynamic shared memory segments (dynamic_shared_memory_type = posix) are created there on demand, for which at least {Bytes(DsmHeadroomBytes)} is recommended" : null,
            }.Where(p => p is not null));
            if (facts.DevShmFreeBytes is not long free)
            {
                findings.Add(new Finding($"could not determine the free space of \"{DevShm}\"",
                    $"POSIX shared memory lives there: {parts}.",
                    $"Check that a tmpfs is mounted on {DevShm}."));
            }
            else if (free < needed)
            {
                findings.Add(new Finding(
                    $"\"{DevShm}\" has {Bytes(free)} free, less than the {Bytes(needed)} this configuration can need",
                    char.ToUpperInvariant(parts[0]) + parts[1..] + ".",
                    "Give it more space: \"docker run --shm-size=1g\" (or \"shm_size\" in Compose), a memory-backed emptyDir mounted on /dev/shm in Kubernetes, " +
                    "or \"mount -o remount,size=1G /dev/shm\" on a host; or use shared_memory_type = sysv and dynamic_shared_memory_type = sysv."));
            }
        }
        if (mainType == SharedMemoryType.SysV)
        {
            if (facts.ShmMaxBytes is long max && mainSegmentBytes > max)
                findings.Add(new Finding(
                    $"the main shared memory segment needs {Bytes(mainSegmentBytes)}, more than the kernel's largest System V segment (kernel.shmmax = {max})",
                    "Creating it will fail with \"Invalid argument\".",
                    $"Raise the limit: \"sysctl -w kernel.shmmax={mainSegmentBytes}\" (and in /etc/sysctl.d to keep it), or reduce shared_memory_size or max_backends, or use shared_memory_type = posix."));
            if (facts.ShmAllBytes is long all)
            {
                long inUse = facts.SysVInUseBytes ?? 0;
                long left = Math.Max(0, all - inUse);
                if (mainSegmentBytes > left)
                {
                    long pages = (inUse + mainSegmentBytes + Environment.SystemPageSize - 1) / Environment.SystemPageSize;
                    findings.Add(new Finding(
                        $"the main shared memory segment needs {Bytes(mainSegmentBytes)}, more than the {Bytes(left)} System V shared memory left (kernel.shmall = {all / Environment.SystemPageSize} pages, {Bytes(inUse)} in use)",
                        "Creating it will fail with \"No space left on device\".",
                        $"Raise the limit: \"sysctl -w kernel.shmall={pages}\" (pages of {Environment.SystemPageSize} bytes), or reduce shared_memory_size or max_backends, or use shared_memory_type = posix."));
                }
            }
        }
        return findings;
    }

    /// <summary>Reads the facts of this machine (never throws: what cannot be read is null).</summary>
    public static Facts Observe()
    {
        long? free = null;
        try
        {
            if (Directory.Exists(DevShm))
                free = new DriveInfo(DevShm).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            free = null;
        }
        long? shmMax = ReadProcNumber("/proc/sys/kernel/shmmax");
        long? shmAllPages = ReadProcNumber("/proc/sys/kernel/shmall");
        long? shmAll = shmAllPages is long p ? (p > long.MaxValue / Environment.SystemPageSize ? long.MaxValue : p * Environment.SystemPageSize) : null;
        return new Facts(free, shmMax, shmAll, SysVInUse());
    }

    /// <summary>A /proc number; values beyond a long (the kernel's "unlimited" is near 2^64) saturate.</summary>
    private static long? ReadProcNumber(string path)
    {
        try
        {
            string text = File.ReadAllText(path).Trim();
            if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long v))
                return v;
            return ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out _) ? long.MaxValue : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Bytes of all System V segments in this IPC namespace (column "size" of /proc/sysvipc/shm).</summary>
    private static long? SysVInUse()
    {
        try
        {
            long total = 0;
            string[] lines = File.ReadAllLines("/proc/sysvipc/shm");
            if (lines.Length == 0)
                return null;
            int sizeColumn = Array.IndexOf(lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries), "size");
            if (sizeColumn < 0)
                return null;
            foreach (string line in lines.Skip(1))
            {
                string[] cols = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (cols.Length > sizeColumn && long.TryParse(cols[sizeColumn], NumberStyles.None, CultureInfo.InvariantCulture, out long size))
                    total = total > long.MaxValue - size ? long.MaxValue : total + size;
            }
            return total;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>A size for a message: whole MB (1 MB = 2^20 bytes, PostgreSQL's unit) when at least 1 MB, else bytes.</summary>
    internal static string Bytes(long bytes) => bytes >= 1L << 20
        ? (bytes / (double)(1L << 20)).ToString(bytes % (1L << 20) == 0 ? "0" : "0.#", CultureInfo.InvariantCulture) + " MB"
        : bytes.ToString(CultureInfo.InvariantCulture) + " bytes";
}
