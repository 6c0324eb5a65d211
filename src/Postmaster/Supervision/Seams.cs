using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Os;

namespace Postmaster.Supervision;

/// <summary>The supervisor's only ways to start, wait for and signal processes: real ones in the daemon, scripted ones
/// in the unit tests of the supervision rules.</summary>
internal interface IProcessOps
{
    /// <summary>Starts a backend (with ICU globalization when <paramref name="icu"/>, else invariant); returns its pid.
    /// Throws <see cref="Shmem.Errors.OsCallException"/> when it cannot.</summary>
    int Launch(BackendParameters parameters, bool icu);

    /// <summary>The child's exit if it has exited (and is now reaped), else null.</summary>
    ChildExit? TryReap(int pid);

    /// <summary>Sends a signal to a child of ours (a pid the supervisor started and has not reaped).</summary>
    void Signal(int pid, int signal);
}

/// <summary>The supervisor's clock: milliseconds for deadlines, wall time for what is shown.</summary>
public interface IClock
{
    /// <summary>Monotonic milliseconds (Environment.TickCount64).</summary>
    long NowMs { get; }

    DateTime UtcNow { get; }
}

public sealed class SystemClock : IClock
{
    public static readonly SystemClock Instance = new();

    public long NowMs => Environment.TickCount64;

    public DateTime UtcNow => DateTime.UtcNow;
}

/// <summary>Real processes: posix_spawn through <see cref="BackendLauncher"/>, waitpid by pid, kill(2).</summary>
internal sealed class OsProcessOps(BackendLauncher launcher) : IProcessOps
{
    public int Launch(BackendParameters parameters, bool icu) => launcher.Launch(parameters, icu);

    public ChildExit? TryReap(int pid) => ProcessSpawner.TryReap(pid);

    public void Signal(int pid, int signal)
    {
        if (pid > 1)
            ProcessControl.Signal(pid, signal);
    }
}
