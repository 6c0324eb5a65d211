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
    /// <summary>The built-in workers of pm-backend (src/Backend/WorkerResolver.cs; a test keeps both lists equal).</summary>
    public static readonly IReadOnlyList<string> Builtins = new[]
    {
        "idle", "exit", "demo", "lock-hold", "spawn", "dsm-hold", "dsm-attach", "dsm-churn", "registry-set", "registry-get",
    };

    /// <summary>Null when <paramref name="entry"/> is acceptable; otherwise the error (and its exit code).</summary>
    public static CliException? Check(string entry, string dataDir)
    {
        if (Builtins.Contains(entry))
            return null;
        int colon = entry.LastIndexOf(':');
        if (colon <= 0 || colon == entry.Length - 1)
            return new CliException($"invalid worker entry \"{entry}\"", ExitCodes.Usage,
                hint: $"Use a built-in worker ({string.Join(", ", Builtins)}) or \"path/to/Assembly.dll:Namespace.Type\".");
        string file = entry[..colon];
        string type = entry[(colon + 1)..];
        if (!file.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
            return new CliException($"invalid worker entry \"{entry}\": \"{file}\" is not a .dll file", ExitCodes.Usage,
                hint: "Use \"path/to/Assembly.dll:Namespace.Type\".");
        if (type.Any(char.IsWhiteSpace) || type.StartsWith('.') || type.EndsWith('.'))
            return new CliException($"invalid worker entry \"{entry}\": \"{type}\" is not a type name", ExitCodes.Usage);
        string path = Path.GetFullPath(file, dataDir);
        try
        {
            var st = Shmem.Os.FileStat.TryStat(path);
            if (st is null)
                return new CliException($"could not access worker library \"{path}\": No such file or directory");
            if (st.Value.IsDirectory)
                return new CliException($"could not access worker library \"{path}\": Is a directory");
            if ((st.Value.Mode & 0xF000) != 0x8000)
                return new CliException($"worker library \"{path}\" is not a regular file");
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
        }
        catch (Shmem.Errors.OsCallException e)
        {
            return new CliException($"could not access worker library \"{path}\": {Shmem.Os.OsError.Text(e.Errno)}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new CliException($"could not access worker library \"{path}\": {Shmem.Os.OsError.Describe(e)}");
        }
        return null;
    }

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
