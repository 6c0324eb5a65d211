using Postmaster.Backend;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Os;

// Signal dispositions first (see src/Postmaster/Program.cs): the runtime must not record an inherited SIG_IGN.
foreach (int signal in new[] { Signals.SIGINT, Signals.SIGQUIT, Signals.SIGTERM, Signals.SIGHUP })
    ProcessControl.UnignoreSignal(signal);

// A backend is started only by the postmaster: its parameters arrive on descriptor 3 (never on the command line).
string text;
try
{
    text = ProcessSpawner.ReadToEnd(BackendParameters.ParameterFd);
    ProcessSpawner.Close(BackendParameters.ParameterFd);
}
catch (OsCallException e)
{
    Console.Error.WriteLine($"pm-backend: could not read backend parameters from descriptor {BackendParameters.ParameterFd}: {e.Message}");
    Console.Error.WriteLine("pm-backend is started by postmaster; it is not meant to be run by hand.");
    return BackendHost.ExitFailure;
}
BackendParameters parameters;
try
{
    parameters = BackendParameters.Parse(text);
}
catch (FormatException e)
{
    Console.Error.WriteLine($"pm-backend: invalid backend parameters: {e.Message}");
    return BackendHost.ExitFailure;
}
using var log = new BackendLog(parameters.WorkerName, parameters.Slot, parameters.LogDestination, parameters.LogLevel);
return new BackendHost(parameters, log).Run();

