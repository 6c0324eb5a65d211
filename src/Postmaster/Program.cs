using System.CommandLine;
using Postmaster.Cli;
using Postmaster.Shmem.Os;

// First of all: a shell starts background jobs with SIGINT and SIGQUIT ignored, and the .NET runtime remembers the
// dispositions it finds when its signal layer starts (on first console use) and then refuses to handle an ignored
// signal. Restore the defaults before anything else runs, so the daemon's handlers are installed.
foreach (int signal in new[] { Signals.SIGINT, Signals.SIGQUIT, Signals.SIGTERM, Signals.SIGHUP })
    ProcessControl.UnignoreSignal(signal);

// The last resort: an exception that escapes everything (another thread, a finalizer) prints one line, never a
// stack trace, and exits 1. Every command also catches what it expects at its boundary (CliBoundary).
AppDomain.CurrentDomain.UnhandledException += (_, e) =>
{
    CliBoundary.InternalError(e.ExceptionObject as Exception ?? new InvalidOperationException(e.ExceptionObject?.ToString()));
    Console.Error.Flush();
    ProcessControl.ExitImmediately(ExitCodes.Failure);
};

try
{
    return RunCli(args);
}
catch (Exception e)
{
    return CliBoundary.Handle(e);
}

static int RunCli(string[] args)
{
    // As process 1 (or with --init): a minimal init that runs the real postmaster as its child. Before anything that
    // could touch Console, whose set-up installs the runtime's SIGCHLD handler (see InitProcess).
    if (Postmaster.Daemon.InitProcess.ChildArguments(args, ProcessControl.CurrentPid) is { } childArgs)
        return Postmaster.Daemon.InitProcess.Run(childArgs);

    // A daemon child started by `start --detach` gets arguments we generated ourselves: skip the parser (startup time).
    if (StartCommand.TryRunDaemonChild(args) is int daemonExit)
        return daemonExit;

    // The CLI: builds the command tree and nothing else. Usage errors exit 2 (never 0, 3 or 4, which mean
    // running / not running / no data directory for `status`).
    var root = new RootCommand("postmaster: a PostgreSQL-style process supervisor with shared memory")
    {
        InitCommand.Create(),
        StartCommand.Create(),
        StopCommand.Create(),
        RestartCommand.Create(),
        ReloadCommand.Create(),
        ReloadCommand.CreateLogRotate(),
        StatusCommand.Create(),
        ShmemCommand.Create(),
        SpawnCommand.Create(),
        TerminateCommand.Create(),
        StartWorkerCommand.Create(),
        CleanupCommand.Create(),
        ConfigCommand.Create(),
        MetricsCommand.Create(),
    };
    var parsed = root.Parse(args);
    if (parsed.Errors.Count > 0)
    {
        foreach (var e in parsed.Errors)
            Console.Error.WriteLine("postmaster: " + UsageText.Rephrase(e.Message));
        Console.Error.WriteLine("Try \"postmaster --help\" for more information.");
        return ExitCodes.Usage;
    }
    // Exceptions reach our handler (CliBoundary), not System.CommandLine's, which prints a stack trace.
    return parsed.Invoke(new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false });
}
