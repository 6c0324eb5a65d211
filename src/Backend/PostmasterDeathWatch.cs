using Postmaster.Shmem.Os;

namespace Postmaster.Backend;

/// <summary>
/// Notices the postmaster's death without a thread of its own. PR_SET_PDEATHSIG makes the kernel send SIGTERM the
/// moment the postmaster dies (it is set after exec, so the parent pid is checked once right after, which closes the
/// window between the two). The backend's SIGTERM handler calls <see cref="PostmasterGone"/> to tell that from an
/// ordinary stop request: the backend then logs why, stops its worker, and if that has not finished within
/// <see cref="GracePeriod"/> it is ended with _exit (the kernel detaches everything), so it never lingers attached.
/// The postmaster starts every backend from its supervisor loop, which runs on its main thread for its whole life
/// (PR_SET_PDEATHSIG follows the thread that started the child).
/// </summary>
public static class PostmasterDeathWatch
{
    public static readonly TimeSpan GracePeriod = TimeSpan.FromMilliseconds(800);

    /// <summary>Asks for SIGTERM at the postmaster's death; returns false when it is already gone.</summary>
    public static bool Arm(int postmasterPid)
    {
        ProcessSpawner.SetParentDeathSignal(Signals.SIGTERM);
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
