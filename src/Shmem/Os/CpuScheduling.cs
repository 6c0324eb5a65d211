using Postmaster.Shmem.Interop;

namespace Postmaster.Shmem.Os;

/// <summary>The Linux CPU scheduling policies a connection backend may take without privileges (systemd's
/// <c>CPUSchedulingPolicy=</c> names them the same way); the value of <c>connection_scheduling_policy</c>, whose allowed
/// values are in this order.</summary>
internal enum CpuSchedulingPolicy
{
    /// <summary>SCHED_BATCH: time-sharing at the same priority, but a woken thread does not preempt the one running on its
    /// CPU: it waits for that one to block or use up its slice.</summary>
    Batch,

    /// <summary>SCHED_OTHER: Linux's default time-sharing policy; a woken thread may preempt the running one.</summary>
    Other,
}

/// <summary>Sets the CPU scheduling policy of a whole process (sched_setscheduler(2)).</summary>
internal static class CpuScheduling
{
    public static string Name(CpuSchedulingPolicy policy) => policy == CpuSchedulingPolicy.Batch ? "batch" : "other";

    public static bool TryParse(string text, out CpuSchedulingPolicy policy)
    {
        policy = text == "batch" ? CpuSchedulingPolicy.Batch : CpuSchedulingPolicy.Other;
        return text is "batch" or "other";
    }

    /// <summary>
    /// Gives every thread of this process <paramref name="policy"/> (Linux schedules threads: the call takes a thread
    /// id, so each of /proc/self/task is set). Threads created afterwards inherit their creator's policy. Returns 0, or
    /// the errno of the first thread that could not be set (a thread that ended meanwhile, ESRCH, is not a failure).
    /// </summary>
    public static unsafe int TrySetForProcess(CpuSchedulingPolicy policy)
    {
        int native = policy == CpuSchedulingPolicy.Batch ? Libc.SCHED_BATCH : Libc.SCHED_OTHER;
        int priority = 0;
        if (Libc.sched_setscheduler(0, native, &priority) != 0)
            return Libc.Errno;
        string[] tasks;
        try
        {
            tasks = Directory.GetFileSystemEntries("/proc/self/task");
        }
        catch (IOException)
        {
            return 0; // no /proc: the calling thread is set, and the threads it starts inherit it
        }
        catch (UnauthorizedAccessException)
        {
            return 0;
        }
        foreach (string task in tasks)
        {
            if (!int.TryParse(Path.GetFileName(task), out int tid) || tid <= 0)
                continue;
            if (Libc.sched_setscheduler(tid, native, &priority) != 0 && Libc.Errno is int errno && errno != Errno.ESRCH)
                return errno;
        }
        return 0;
    }
}
