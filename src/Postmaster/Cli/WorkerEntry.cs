using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Text;

namespace Postmaster.Cli;

/// <summary>
/// What <c>spawn --worker ENTRY</c> accepts, checked before anything is sent to the server: a built-in worker's name,
/// or "PATH.dll:Namespace.Type" whose PATH (relative to the data directory) is an existing, readable file. The server
/// checks again when it starts the worker; this only stops the obvious mistakes at the door with a clear message.
/// </summary>
public static class WorkerEntry
{
    /// <summary>The built-in workers of pm-backend (one list, <see cref="BuiltinWorkers"/>; a test keeps it equal
    /// to the backend's resolver).</summary>
    public static IReadOnlyList<string> Builtins => BuiltinWorkers.Names;

    /// <summary>Null when <paramref name="entry"/> is acceptable; otherwise the error (and its exit code). The same
    /// check the supervisor makes (<see cref="Supervision.WorkerEntryCheck"/>).</summary>
    public static CliException? Check(string entry, string dataDir) =>
        Supervision.WorkerEntryCheck.Check(entry, dataDir) is { } p
            ? new CliException(p.Message, p.IsUsage ? ExitCodes.Usage : ExitCodes.Failure, hint: p.Hint)
            : null;

    /// <summary>The name a worker gets without --name: a built-in's name, or the type's simple name, cut to the slot's
    /// limit on a character boundary.</summary>
    public static string DefaultName(string entry)
    {
        int colon = entry.LastIndexOf(':');
        string name = colon < 0 ? entry : entry[(colon + 1)..];
        int dot = name.LastIndexOfAny(new[] { '.', '+' });
        if (dot >= 0 && dot < name.Length - 1)
            name = name[(dot + 1)..];
        while (Utf8Text.GetByteCount(name) > BackendSlotArray.MaxNameBytes)
            name = name[..^1];
        return name;
    }
}
