using Postmaster.Workers;

namespace Postmaster.Supervision;

/// <summary>
/// What can be known about a worker entry without starting a process: a built-in name must exist, an assembly entry
/// (<c>path/to/Assembly.dll:Namespace.Type</c>, a relative path is relative to the data directory) must name a file
/// that exists and a type name. The backend still does the real load; this only refuses what can never start.
/// </summary>
public static class WorkerEntryCheck
{
    public static string Hint => $"Use a built-in worker ({string.Join(", ", BuiltinWorkers.Names)}) or \"path/to/Assembly.dll:Namespace.Type\".";

    /// <summary>Null when the entry may start, else why it cannot.</summary>
    public static string? Problem(string entry, string dataDir)
    {
        int colon = entry.LastIndexOf(':');
        if (colon < 0)
            return BuiltinWorkers.Names.Contains(entry, StringComparer.Ordinal)
                ? null
                : $"unknown built-in worker \"{entry}\"";
        if (colon == 0 || colon == entry.Length - 1)
            return $"invalid worker entry \"{entry}\": expected \"path/to/Assembly.dll:Namespace.Type\"";
        string path;
        try
        {
            path = Path.GetFullPath(entry[..colon], dataDir);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return $"invalid worker library path \"{entry[..colon]}\"";
        }
        if (Directory.Exists(path))
            return $"could not load worker library \"{path}\": Is a directory";
        if (!File.Exists(path))
            return $"could not access worker library \"{path}\": No such file or directory";
        return null;
    }
}
