using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;
using Postmaster.Supervision;

namespace Postmaster.Cli;

/// <summary>Client-side control of a running server: find it through its lock file, signal it, wait for it.</summary>
public static class ServerControl
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(1);

    /// <summary>The running server's lock-file contents, or null when no live postmaster holds the lock.</summary>
    public static LockFileContents? FindRunning(string dir)
    {
        var (locked, contents) = DataDirLockFile.Probe(dir);
        return locked ? contents : null;
    }

    public static int SignalFor(ShutdownMode mode) => mode switch
    {
        ShutdownMode.Smart => Signals.SIGTERM,
        ShutdownMode.Immediate => Signals.SIGQUIT,
        _ => Signals.SIGINT,
    };

    /// <summary>Stops the server in <paramref name="dir"/>; prints what happened and returns the exit code.</summary>
    public static int Stop(string dir, ShutdownMode mode, bool wait, TimeSpan timeout, bool quietIfStopped = false)
    {
        var running = FindRunning(dir);
        if (running is null)
        {
            if (!quietIfStopped)
                Report.Error($"no server running in data directory \"{dir}\"",
                    hint: File.Exists(Path.Combine(dir, DataDirLockFile.FileName))
                        ? $"The lock file \"{DataDirLockFile.FileName}\" is stale: no process holds it." : null);
            return ExitCodes.Failure;
        }
        if (!ProcessControl.Signal(running.Pid, SignalFor(mode)))
        {
            Report.Error($"could not send stop signal (PID {running.Pid}): No such process");
            return ExitCodes.Failure;
        }
        if (!wait)
        {
            Console.WriteLine("server shutting down");
            return ExitCodes.Ok;
        }
        if (!WaitUntilStopped(dir, running.Pid, timeout))
        {
            Report.Error($"server (PID {running.Pid}) does not shut down",
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
