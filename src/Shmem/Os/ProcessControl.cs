using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;

namespace Postmaster.Shmem.Os;

/// <summary>Typed wrappers for signalling and liveness. Liveness is never judged by kill(pid, 0) alone: on these
/// machines PID 1 does not reap orphans, so a dead process can remain a zombie for ever; the state letter in
/// /proc/PID/stat tells ("Z" or "X" means dead).</summary>
internal static class ProcessControl
{
    public static int CurrentPid { get; } = Environment.ProcessId;

    /// <summary>This process's parent pid now (getppid: 1 or a subreaper once the parent died).</summary>
    public static int ParentPid => Libc.getppid();

    /// <summary>geteuid().</summary>
    public static uint EffectiveUid => Libc.geteuid();

    /// <summary>kill(pid, sig). True when delivered, false when the process does not exist (ESRCH); other errors
    /// (EPERM) throw, naming the pid. Pid 1 (init) and pid &lt;= 0 (process groups, everyone) are never signalled.</summary>
    public static bool Signal(int pid, int signal)
    {
        if (pid <= 1)
            throw new ArgumentOutOfRangeException(nameof(pid), $"refusing to signal pid {pid}");
        if (Libc.kill(pid, signal) == 0)
            return true;
        int errno = Libc.Errno;
        if (errno == Errno.ESRCH)
            return false;
        throw new OsCallException($"could not send signal {signal} to process {pid}", errno);
    }

    /// <summary>Marks an inherited descriptor close-on-exec (systemd's passed sockets must not reach backends).</summary>
    public static void SetCloseOnExec(int fd) => Libc.fcntl_int(fd, Libc.F_SETFD, Libc.FD_CLOEXEC);

    /// <summary>True when the process exists and is not a zombie.</summary>
    public static bool IsAlive(int pid)
    {
        if (pid <= 0)
            return false;
        if (Libc.kill(pid, 0) != 0 && Libc.Errno == Errno.ESRCH)
            return false;
        var state = ReadState(pid);
        return state is not null && state != 'Z' && state != 'X';
    }

    /// <summary>The state letter from /proc/PID/stat (R, S, D, Z, T, ...), or null when there is no such process.</summary>
    public static char? ReadState(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null; // FileNotFound/DirectoryNotFound: the process is gone
        }
        // "pid (comm) S ...": comm may contain spaces or parentheses, so find the last ')'.
        int close = text.LastIndexOf(')');
        return close >= 0 && close + 2 < text.Length ? text[close + 2] : null;
    }

    /// <summary>
    /// Restores the default disposition of <paramref name="signal"/> if it was inherited as ignored (a shell starts
    /// background jobs with SIGINT and SIGQUIT ignored, and the .NET runtime does not handle a signal that was
    /// ignored at startup). Returns true when it changed something. Call before registering a handler.
    /// </summary>
    /// <summary>Unblocks <paramref name="signals"/> for the calling thread: a signal its parent had blocked for it at
    /// exec (<see cref="SpawnOptions.BlockedSignals"/>) and that arrived meanwhile is delivered now, to the handler
    /// installed since.</summary>
    public static unsafe void UnblockSignals(ReadOnlySpan<int> signals)
    {
        byte* set = stackalloc byte[Libc.SigsetSize];
        Libc.sigemptyset(set);
        foreach (int s in signals)
            Libc.sigaddset(set, s);
        int error = Libc.pthread_sigmask(Libc.SIG_UNBLOCK, set, null);
        if (error != 0)
            throw new OsCallException("could not unblock signals", error);
    }

    public static unsafe bool UnignoreSignal(int signal)
    {
        byte* old = stackalloc byte[Libc.SigactionSize];
        if (Libc.sigaction(signal, null, old) != 0)
            throw new OsCallException($"could not read the disposition of signal {signal}", Libc.Errno);
        if (*(nint*)old != Libc.SIG_IGN)
            return false;
        byte* act = stackalloc byte[Libc.SigactionSize];
        new Span<byte>(act, Libc.SigactionSize).Clear(); // SIG_DFL, empty mask, no flags
        if (Libc.sigaction(signal, act, null) != 0)
            throw new OsCallException($"could not reset the disposition of signal {signal}", Libc.Errno);
        return true;
    }

    /// <summary>prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants of this process are re-parented to it instead of
    /// to process 1 (it must then reap them).</summary>
    public static void BecomeChildSubreaper()
    {
        if (Libc.prctl(Libc.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
            throw new OsCallException("could not make this process a child subreaper (prctl PR_SET_CHILD_SUBREAPER)", Libc.Errno);
    }

    /// <summary>The signal dispositions a process-1 init must check: whether a handler (not SIG_DFL or SIG_IGN) is
    /// installed for <paramref name="signal"/>.</summary>
    public static unsafe bool HasHandler(int signal)
    {
        byte* old = stackalloc byte[Libc.SigactionSize];
        if (Libc.sigaction(signal, null, old) != 0)
            throw new OsCallException($"could not read the disposition of signal {signal}", Libc.Errno);
        nint handler = *(nint*)old;
        return handler != Libc.SIG_IGN && handler != 0;
    }

    /// <summary>_exit(2): ends this process at once, running nothing (no finalizers, no exit callbacks).
    /// For SIGQUIT and for a backend whose postmaster died and that did not stop in time.</summary>
    public static void ExitImmediately(int code) => Libc._exit(code);

    /// <summary>
    /// Ends this process by <paramref name="signal"/> with the default action (the runtime installs its own handlers
    /// for some signals, e.g. SIGSEGV for null references, which would otherwise swallow a self-sent one).
    /// Used by test workers that must die exactly like a crashed process.
    /// </summary>
    public static unsafe void DieBySignal(int signal)
    {
        byte* act = stackalloc byte[Libc.SigactionSize];
        new Span<byte>(act, Libc.SigactionSize).Clear(); // SIG_DFL
        Libc.sigaction(signal, act, null);
        Libc.kill(CurrentPid, signal);
        ExitImmediately(128 + signal); // not reached for signals whose default action terminates
    }
}
