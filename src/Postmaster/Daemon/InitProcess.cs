using System.Globalization;
using System.Runtime.InteropServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Os;

namespace Postmaster.Daemon;

/// <summary>
/// <c>postmaster start</c> as process 1 (a container's entry point) or with <c>--init</c>: a minimal init, as tini
/// and <c>docker run --init</c> are. The supervisor cannot be process 1 itself: there the .NET runtime reaps every
/// child on SIGCHLD (waitpid(-1)), and the supervisor would lose its backends' exit statuses, which crash recovery
/// rests on. So this process starts the real postmaster as its only child, with the same arguments, and then:
/// <list type="bullet">
/// <item>forwards SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1 and SIGUSR2 to it (so <c>docker stop</c> is a smart
/// shutdown, <c>--stop-signal SIGINT</c> a fast one);</item>
/// <item>reaps every orphan that is re-parented to it (process 1 gets them by definition; with --init it becomes a
/// child subreaper) and logs each, so no zombie accumulates;</item>
/// <item>exits with the postmaster's exit code (128 + N when it was killed by signal N), after reaping what is left.</item>
/// </list>
/// Nothing here may install a SIGCHLD handler (no Console, no System.Diagnostics.Process, no SIGCHLD registration):
/// the runtime would then reap the children first. The child is signalled only while it is known unreaped: its
/// zombie keeps the pid until this process reaps it, under the same lock.
/// </summary>
internal static class InitProcess
{
    public const string InitFlag = "--init";

    private static readonly int[] s_forwarded =
        [Signals.SIGTERM, Signals.SIGINT, Signals.SIGQUIT, Signals.SIGHUP, Signals.SIGUSR1, Signals.SIGUSR2];

    /// <summary>
    /// The postmaster's arguments when this invocation is to run as the init, else null: <c>start</c> in the foreground
    /// as process 1, or with <c>--init</c>. The child gets the arguments without --init and parses them itself (usage
    /// errors are its to report). <c>--init</c> with --detach or --log is left to the parser, which refuses it.
    /// </summary>
    public static string[]? ChildArguments(string[] args, int pid)
    {
        if (args.Length == 0 || args[0] != "start")
            return null;
        bool init = false, detached = false;
        for (int i = 1; i < args.Length; i++)
        {
            string a = args[i];
            if (a is "-c" or "-D" or "--pgdata" or "-t" or "--timeout" or "-l" or "--log")
            {
                detached |= a is "-l" or "--log";
                i++; // the value, whatever it says
                continue;
            }
            init |= a == InitFlag;
            // Every spelling System.CommandLine accepts: --detach, --detach:true / =true, --log=FILE, --log:FILE, -lFILE.
            detached |= a is "--detach" or "--daemon-child" || a.StartsWith("--detach:", StringComparison.Ordinal) && !a.EndsWith(":false", StringComparison.OrdinalIgnoreCase)
                || a.StartsWith("--detach=", StringComparison.Ordinal) && !a.EndsWith("=false", StringComparison.OrdinalIgnoreCase)
                || a.StartsWith("--log=", StringComparison.Ordinal) || a.StartsWith("--log:", StringComparison.Ordinal)
                || a.StartsWith("-l", StringComparison.Ordinal) && a.Length > 2;
        }
        if (detached)
            return null;
        if (!init && pid != 1)
            return null;
        return args.Where(a => a != InitFlag).ToArray();
    }

    public static int Run(string[] childArgs)
    {
        int self = ProcessControl.CurrentPid;
        bool subreaper = self != 1;
        if (subreaper)
            ProcessControl.BecomeChildSubreaper();
        var gate = new object();
        int child = 0;
        bool childReaped = false;
        var registrations = new List<PosixSignalRegistration>();
        try
        {
            // Handlers first, so a signal that arrives while the child starts is forwarded, not fatal to us.
            foreach (int signal in s_forwarded)
            {
                ProcessControl.UnignoreSignal(signal);
                registrations.Add(PosixSignalRegistration.Create((PosixSignal)signal, context =>
                {
                    context.Cancel = true;
                    lock (gate)
                    {
                        if (child > 1 && !childReaped)
                            ProcessControl.Signal(child, signal);
                    }
                }));
            }
            // Under a systemd Type=notify unit the notifications come from the postmaster, not from this process (the
            // unit's main PID): the watchdog is handed to it, and the unit needs NotifyAccess=all (docs/operations.md).
            if (Environment.GetEnvironmentVariable(SystemdNotify.SocketVariable) is not null)
            {
                Environment.SetEnvironmentVariable(SystemdNotify.WatchdogPidVariable, null);
                Log(self, "LOG", "NOTIFY_SOCKET is set: the postmaster, not its init process, notifies systemd, so the unit needs NotifyAccess=all");
            }
            lock (gate)
            {
                child = ProcessSpawner.Spawn(new SpawnOptions(
                    Environment.ProcessPath ?? throw new InvalidOperationException("cannot find the postmaster executable"),
                    childArgs));
            }
            Log(self, "LOG", $"postmaster init (PID {self}{(subreaper ? ", child subreaper" : "")}) started the postmaster (PID {child}); it forwards signals to it and reaps orphaned processes");
            ChildExit? exit = null;
            while (exit is null)
            {
                if (ProcessSpawner.PeekEnded(block: true) is not int ended)
                    throw new InvalidOperationException("the postmaster is no longer a child of its init process");
                if (ended == child)
                {
                    lock (gate)
                    {
                        childReaped = true;
                        exit = ProcessSpawner.TryReap(child);
                    }
                }
                else
                {
                    ReapOrphan(self, ended);
                }
            }
            while (ProcessSpawner.PeekEnded(block: false) is int left)
                ReapOrphan(self, left);
            if (ProcessControl.HasHandler(Signals.SIGCHLD))
                Log(self, "WARNING", "a SIGCHLD handler was installed in the init process; children may have been reaped without being logged");
            return exit switch
            {
                { ExitCode: int code } => code,
                { Signal: int sig } => 128 + sig,
                _ => 1,
            };
        }
        catch (Exception e) when (e is OsCallException or InvalidOperationException)
        {
            Log(self, "FATAL", e.Message);
            return 1;
        }
        finally
        {
            foreach (var r in registrations)
                r.Dispose();
        }
    }

    private static void ReapOrphan(int self, int pid)
    {
        if (ProcessSpawner.TryReap(pid) is { } exit)
            Log(self, "LOG", exit.Describe("orphaned process") + " (reaped by the init process)");
    }

    /// <summary>One line in the server's text format on stderr, written whole with one write(2) (never through
    /// Console, which would install the runtime's SIGCHLD handler).</summary>
    private static void Log(int self, string severity, string message)
    {
        string line = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture) +
                      $" UTC [{self}] {severity}:  {message.Replace('\n', ' ')}\n";
        ProcessSpawner.TryWrite(2, line);
    }
}
