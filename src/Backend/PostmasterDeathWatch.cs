using Postmaster.Shmem.Os;

namespace Postmaster.Backend;

/// <summary>
/// Notices the postmaster's death without a thread of its own. PR_SET_PDEATHSIG makes the kernel send
/// <see cref="DeathSignal"/> (SIGUSR2, a signal nothing else sends a backend) when the postmaster dies (it is set
/// after exec, so the parent pid is checked once right after, which closes the window between the two). The kernel
/// sends it each time the child is re-parented: first when the thread that started the child exits (with a
/// SIGKILLed, multi-threaded postmaster the threads die one by one, and the child then moves to another thread of
/// the same, still-dying process, so its parent pid does not change yet), and again when the last thread is gone
/// and the child moves to init. The backend acts only on a delivery after which <see cref="PostmasterGone"/> is
/// true: the postmaster's death is then certain and is reported exactly once, and SIGTERM keeps one meaning, a stop
/// request (an earlier version used SIGTERM for both, and the first, early delivery was taken for a stop request:
/// two contradicting FATAL lines). The backend then logs why, stops its worker, and if that has not finished within
/// <see cref="GracePeriod"/> it is ended with _exit (the kernel detaches everything), so it never lingers attached.
/// The postmaster starts every backend from its supervisor loop, which runs on its main thread for its whole life.
/// </summary>
internal static class PostmasterDeathWatch
{
    public static readonly TimeSpan GracePeriod = TimeSpan.FromMilliseconds(800);

    /// <summary>The parent-death signal: SIGUSR2.</summary>
    public const int DeathSignal = Signals.SIGUSR2;

    /// <summary>Asks for <see cref="DeathSignal"/> at the postmaster's death (its handler must be installed first);
    /// returns false when it is already gone.</summary>
    public static bool Arm(int postmasterPid)
    {
        ProcessSpawner.SetParentDeathSignal(DeathSignal);
        return !PostmasterGone(postmasterPid);
    }

    /// <summary>Whether this process's parent is no longer the postmaster (it died and the process was re-parented).</summary>
    public static bool PostmasterGone(int postmasterPid) => ProcessControl.ParentPid != postmasterPid;

    /// <summary>Ends the process with <paramref name="code"/> (no exit path) unless it has exited within the grace period.</summary>
    public static void ExitAfterGracePeriod(int code) => new Thread(() =>
    {
        Thread.Sleep(GracePeriod);
        ProcessControl.ExitImmediately(code);
    })
    {
        IsBackground = true,
        Name = "postmaster death grace period",
    }.Start();
}
