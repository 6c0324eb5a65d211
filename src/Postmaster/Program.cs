using System.CommandLine;
using Postmaster.Cli;

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
    StatusCommand.Create(),
    ShmemCommand.Create(),
    SpawnCommand.Create(),
    TerminateCommand.Create(),
    CleanupCommand.Create(),
};
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    foreach (var e in parsed.Errors)
        Console.Error.WriteLine("postmaster: " + e.Message);
    Console.Error.WriteLine("Try \"postmaster --help\" for more information.");
    return ExitCodes.Usage;
}
return parsed.Invoke(new InvocationConfiguration { ProcessTerminationTimeout = null });
