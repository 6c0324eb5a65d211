namespace Postmaster.Testing;

/// <summary>Finds the installed <c>postmaster</c> executable: the explicit path, else <c>$POSTMASTER_OUT</c>, else
/// <c>PATH</c>.</summary>
public static class PostmasterBinary
{
    /// <summary>The executable's file name.</summary>
    public const string FileName = "postmaster";

    /// <summary>
    /// The <c>postmaster</c> executable: <paramref name="explicitPath"/> when given (the file, or a directory holding
    /// it), else <c>postmaster</c> in the directory <c>POSTMASTER_OUT</c> names, else the first <c>postmaster</c> on
    /// <c>PATH</c>. Throws <see cref="ClusterException"/> naming all three when none is found, and when the explicit
    /// path or <c>POSTMASTER_OUT</c> is set but holds no executable (no silent fallback to another binary).
    /// </summary>
    public static string Locate(string? explicitPath = null) =>
        Locate(explicitPath, Environment.GetEnvironmentVariable(ClusterOptions.OutVariable), Environment.GetEnvironmentVariable("PATH"));

    /// <summary><see cref="Locate(string?)"/> with the two environment variables' values given.</summary>
    internal static string Locate(string? explicitPath, string? outDir, string? searchPath)
    {
        if (!string.IsNullOrEmpty(explicitPath))
            return Executable(explicitPath, $"ClusterOptions.PostmasterPath (\"{explicitPath}\")");
        if (!string.IsNullOrEmpty(outDir))
            return Executable(outDir, $"{ClusterOptions.OutVariable} (\"{outDir}\")");
        foreach (var dir in (searchPath ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, FileName);
            if (IsExecutable(candidate))
                return Path.GetFullPath(candidate);
        }
        throw new ClusterException(
            "cannot find the postmaster executable: set ClusterOptions.PostmasterPath to it, or the environment variable " +
            $"{ClusterOptions.OutVariable} to the directory that holds it, or put \"{FileName}\" on PATH");
    }

    private static string Executable(string path, string source)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, FileName) : path;
        if (!IsExecutable(file))
            throw new ClusterException($"{source} names no postmaster executable: \"{file}\" is not an executable file");
        return Path.GetFullPath(file);
    }

    private static bool IsExecutable(string file) =>
        File.Exists(file) && (File.GetUnixFileMode(file) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;
}
