using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;
using Postmaster.Supervision;

namespace Postmaster.Cli;

/// <summary>A running server found through its lock file, with its pid PROVEN (it holds the lock) and a handle on
/// that process: signal it only through <see cref="Signal"/>.</summary>
internal sealed class RunningServer(LockFileContents contents, ProcessHandle process) : IDisposable
{
    public LockFileContents Contents { get; } = contents;

    public int Pid => process.Pid;

    /// <summary>True when delivered; false when the server exited meanwhile.</summary>
    public bool Signal(int signal) => process.Signal(signal);

    public void Dispose() => process.Dispose();
}

/// <summary>Client-side control of a running server: find it through its lock file, signal it, wait for it.</summary>
internal static class ServerControl
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(1);

    /// <summary>
    /// The running server, or null when no process holds the lock file. The pid on line 1 is used only once proven to
    /// be the lock holder (<see cref="LockHolderProof"/>); when the file is locked but line 1 is not the holder (the file
    /// was damaged), throws a <see cref="CliException"/> saying so: nothing must then be signalled.
    /// </summary>
    public static RunningServer? FindRunning(string dir)
    {
        var state = DataDirLockFile.Inspect(dir);
        if (!state.Locked)
            return null;
        if (state.Holder is { } holder && state.Contents is { } contents)
            return new RunningServer(contents, holder);
        state.Dispose();
        throw Damaged(state);
    }

    /// <summary>The error for a lock file that is locked (a server runs) but whose pid is not the holder.</summary>
    public static CliException Damaged(LockFileState state) => new(
        $"a server holds the lock on \"{state.Path}\", but the lock file is damaged: {state.Unproven}",
        ExitCodes.Failure,
        detail: "The process ID of the server cannot be proven, so no signal was sent" +
                (state.ActualHolders is { Count: > 0 } h ? $"; the lock is held by PID {string.Join(", ", h)}." : "."),
        hint: state.ActualHolders is { Count: 1 } one
            ? $"Stop the server by hand (\"kill -INT {one[0]}\" is a fast shutdown); never edit its lock file."
            : "Find the server process (it has the lock file open), stop it by hand; never edit its lock file.");

    public static int SignalFor(ShutdownMode mode) => mode switch
    {
        ShutdownMode.Smart => Signals.SIGTERM,
        ShutdownMode.Immediate => Signals.SIGQUIT,
        _ => Signals.SIGINT,
    };

    /// <summary>Stops the server in <paramref name="dir"/>; prints what happened and returns the exit code.</summary>
    public static int Stop(string dir, ShutdownMode mode, bool wait, TimeSpan timeout)
    {
        using var running = FindRunning(dir);
        if (running is null)
        {
            bool stale = File.Exists(Path.Combine(dir, DataDirLockFile.FileName));
            Report.Error($"no server running in data directory \"{dir}\"",
                hint: stale ? $"The lock file \"{DataDirLockFile.FileName}\" is stale: no process holds it." : null);
            return ExitCodes.Failure;
        }
        if (!running.Signal(SignalFor(mode)))
        {
            Report.Error($"could not send stop signal to the server (PID {running.Pid}): No such process");
            return ExitCodes.Failure;
        }
        if (!wait)
        {
            Console.WriteLine("server shutting down");
            return ExitCodes.Ok;
        }
        if (!WaitUntilStopped(dir, running.Pid, timeout))
        {
            Report.Error($"server (PID {running.Pid}) does not shut down (waited {timeout.TotalSeconds:0} s)",
                hint: mode == ShutdownMode.Smart ? "The \"-m fast\" option stops the server without waiting for backends to finish." : null);
            return ExitCodes.Failure;
        }
        Console.WriteLine("server stopped");
        return ExitCodes.Ok;
    }

    /// <summary>True once the lock file is released and removed (or names another server) and the process is gone
    /// (a zombie counts as gone: it holds nothing).</summary>
    public static bool WaitUntilStopped(string dir, int pid, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var (locked, contents) = DataDirLockFile.Probe(dir);
            if (!locked && (contents is null || contents.Pid != pid) && !ProcessControl.IsAlive(pid))
                return true;
            if (DateTime.UtcNow >= deadline)
                return false;
            Thread.Sleep(PollInterval);
        }
    }
}
