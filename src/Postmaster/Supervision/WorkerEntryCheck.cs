using Postmaster.Shmem.Backends;

namespace Postmaster.Supervision;

/// <summary>Why an entry cannot start. <paramref name="IsUsage"/>: the entry itself is malformed or names no built-in
/// worker (a usage error at the command line), as opposed to a library file that cannot be read.</summary>
public sealed record WorkerEntryProblem(string Message, bool IsUsage, string? Hint = null);

/// <summary>
/// What can be known about a worker entry without starting a process, checked where an entry enters (the CLI's
/// <c>spawn</c>, the supervisor's spawn requests and every start of a configured worker): a built-in name must exist;
/// an assembly entry (<c>path/to/Assembly.dll:Namespace.Type</c>, a relative path is relative to the data directory)
/// must name a readable regular .dll file and a plausible type name. The backend still does the real load; this only
/// refuses what can never start.
/// </summary>
public static class WorkerEntryCheck
{
    public static string Hint => $"Use a built-in worker ({string.Join(", ", BuiltinWorkers.Names)}) or \"path/to/Assembly.dll:Namespace.Type\".";

    /// <summary>Null when the entry may start, else why it cannot. <paramref name="tryOpen"/>: also open the file once
    /// to prove it is readable (the CLI does; the supervisor, on its request path, trusts stat and lets the backend
    /// report an unreadable file).</summary>
    public static WorkerEntryProblem? Check(string entry, string dataDir, bool tryOpen = true)
    {
        if (BuiltinWorkers.Names.Contains(entry, StringComparer.Ordinal))
            return null;
        int colon = entry.LastIndexOf(':');
        if (colon < 0)
            return new($"invalid worker entry \"{entry}\": no built-in worker has this name", true, Hint);
        if (colon == 0 || colon == entry.Length - 1)
            return new($"invalid worker entry \"{entry}\"", true, Hint);
        string file = entry[..colon];
        string type = entry[(colon + 1)..];
        if (!file.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
            return new($"invalid worker entry \"{entry}\": \"{file}\" is not a .dll file", true, "Use \"path/to/Assembly.dll:Namespace.Type\".");
        if (type.Any(char.IsWhiteSpace) || type.StartsWith('.') || type.EndsWith('.'))
            return new($"invalid worker entry \"{entry}\": \"{type}\" is not a type name", true);
        string path;
        try
        {
            path = Path.GetFullPath(file, dataDir);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return new($"invalid worker library path \"{file}\"", true);
        }
        try
        {
            var st = Shmem.Os.FileStat.TryStat(path);
            if (st is null)
                return new($"could not access worker library \"{path}\": No such file or directory", false);
            if (st.Value.IsDirectory)
                return new($"could not access worker library \"{path}\": Is a directory", false);
            if ((st.Value.Mode & 0xF000) != 0x8000)
                return new($"worker library \"{path}\" is not a regular file", false);
            if (tryOpen)
                using (new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1)) { }
        }
        catch (Shmem.Errors.OsCallException e)
        {
            return new($"could not access worker library \"{path}\": {Shmem.Os.OsError.Text(e.Errno)}", false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new($"could not access worker library \"{path}\": {Shmem.Os.OsError.Describe(e)}", false);
        }
        return null;
    }

    /// <summary>The message only (the supervisor's use).</summary>
    public static string? Problem(string entry, string dataDir) => Check(entry, dataDir, tryOpen: false)?.Message;
}
