using Postmaster.Shmem.Os;

namespace Postmaster.Backend;

/// <summary>
/// Notices the postmaster's death two ways: PR_SET_PDEATHSIG delivers SIGTERM the moment the parent dies (set
/// after exec, then the parent pid is re-checked to close the race), and a thread blocks on the read end of a pipe
/// whose write end only the postmaster holds: end-of-file means it is gone, whatever signal handling does.
/// Either way the backend is told to stop, and if it has not exited within <see cref="GracePeriod"/> it is ended
/// with _exit (the kernel detaches everything), so it never lingers attached.
/// </summary>
public sealed class PostmasterDeathWatch
{
    public static readonly TimeSpan GracePeriod = TimeSpan.FromMilliseconds(800);

    public static void Start(int postmasterPid, int pipeFd, Action onDeath, Action<int> hardExit)
    {
        ProcessSpawner.SetParentDeathSignal(Signals.SIGTERM);
        var thread = new Thread(() =>
        {
            var fd = new SafeFd(pipeFd);
            if (ProcessControl.ReadParentPid(Environment.ProcessId) == postmasterPid)
                ProcessSpawner.ReadWithTimeout(fd, -1); // returns at EOF: the postmaster is gone
            onDeath();
            Thread.Sleep(GracePeriod);
            hardExit(1);
        })
        {
            IsBackground = true,
            Name = "postmaster death watch",
        };
        thread.Start();
    }
}
