using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Os;

namespace Postmaster.Daemon;

/// <summary>The data directory: PostgreSQL's checkDataDir rules, and creation by <c>init</c>.</summary>
internal static class DataDirectory
{
    public const string ConfigFileName = "postmaster.conf";
    public const string OptionsFileName = "postmaster.opts";
    public const string EnvironmentVariable = "PMDATA";
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const uint ModeOwner = 0x1C0;        // 0700
    private const uint ModeOwnerGroupRx = 0x1E8; // 0750

    /// <summary>The absolute path from -D or $PMDATA; null when neither is given.</summary>
    public static string? Resolve(string? option)
    {
        var d = option ?? Environment.GetEnvironmentVariable(EnvironmentVariable);
        return string.IsNullOrEmpty(d) ? null : Path.GetFullPath(d).TrimEnd('/') is { Length: > 0 } p ? p : "/";
    }

    public static string ConfigPath(string dataDir) => Path.Combine(dataDir, ConfigFileName);

    /// <summary>Checks existence, type, ownership and permissions; returns the identity (device, inode).</summary>
    public static FileStat Check(string dataDir)
    {
        var st = FileStat.TryStat(dataDir)
                 ?? throw new StartupException($"data directory \"{dataDir}\" does not exist",
                     hint: $"Create it with \"postmaster init -D {dataDir}\".");
        if (!st.IsDirectory)
            throw new StartupException($"specified data directory \"{dataDir}\" is not a directory");
        if (st.Uid != CurrentUid())
            throw new StartupException($"data directory \"{dataDir}\" has wrong ownership",
                hint: "The server must be started by the user that owns the data directory.");
        if (st.Permissions != ModeOwner && st.Permissions != ModeOwnerGroupRx)
            throw new StartupException($"data directory \"{dataDir}\" has invalid permissions",
                $"Permissions should be u=rwx (0700) or u=rwx,g=rx (0750); they are 0{Convert.ToString(st.Permissions, 8)}.",
                $"Run \"chmod 700 {dataDir}\".");
        return st;
    }

    /// <summary>Creates <paramref name="dataDir"/> (mode 0700) with a default configuration file (<c>init</c>). Refuses a
    /// non-empty directory, and one that another process initialised meanwhile; an existing empty one gets its mode
    /// fixed.</summary>
    public static void Initialize(string dataDir, string configText)
    {
        if (!TryInitialize(dataDir, configText))
            throw new StartupException($"directory \"{dataDir}\" exists but is not empty",
                hint: $"If you want to create a new data directory, either remove or empty the directory \"{dataDir}\", " +
                      "or run init with an argument other than that.");
    }

    /// <summary>
    /// <c>start</c> on a directory that may not exist: creates and initialises it when it is missing (or empty).
    /// Returns false when it already holds something, in particular when a concurrent start created it a moment ago:
    /// the caller then starts normally (and meets that server's lock file), it never advises removing the directory.
    /// Initialisation is atomic: the directory is built under a temporary name beside it and renamed into place, so
    /// nobody ever sees a data directory without its configuration file.
    /// </summary>
    public static bool InitializeIfMissing(string dataDir, string configText) => TryInitialize(dataDir, configText);

    private static bool TryInitialize(string dataDir, string configText)
    {
        var st = Stat(dataDir);
        if (st is { IsDirectory: false })
            throw new StartupException($"\"{dataDir}\" exists but is not a directory");
        if (st is not null)
            return InitializeEmpty(dataDir, configText);
        string parent = Path.GetDirectoryName(dataDir) ?? "/";
        string temp = Path.Combine(parent, $".{Path.GetFileName(dataDir)}.init-{ProcessControl.CurrentPid}");
        for (string? up = parent; up is not null; up = Path.GetDirectoryName(up))
        {
            if (Stat(up) is not { } ancestor)
                continue;
            if (!ancestor.IsDirectory)
                throw new StartupException($"could not create directory \"{dataDir}\": {OsError.Text(OsError.ENOTDIR)}",
                    $"\"{up}\" is not a directory.");
            break;
        }
        try
        {
            Directory.CreateDirectory(parent);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"could not create directory \"{parent}\": {OsError.Describe(e)}");
        }
        RemoveTemporary(temp);
        OsCall(() => Directory.CreateDirectory(temp, OwnerOnly), "create directory", temp);
        try
        {
            OsCall(() => File.SetUnixFileMode(temp, OwnerOnly), "change the mode of directory", temp); // the umask may have removed bits
            OwnerOnlyFile.WriteAtomically(ConfigPath(temp), configText);
            if (RenameDirectory(temp, dataDir))
                return true;
        }
        catch (ShmemException e)
        {
            RemoveTemporary(temp);
            throw new StartupException(e.Message, e.Detail, e.Hint);
        }
        catch
        {
            RemoveTemporary(temp);
            throw;
        }
        RemoveTemporary(temp);
        // Someone created it between our look and our rename: whatever is there now is theirs.
        var now = Stat(dataDir);
        if (now is { IsDirectory: false })
            throw new StartupException($"\"{dataDir}\" exists but is not a directory");
        return InitializeEmpty(dataDir, configText);
    }

    /// <summary>An existing directory: initialised in place when empty (true), left alone otherwise (false).</summary>
    private static bool InitializeEmpty(string dataDir, string configText)
    {
        bool empty;
        try
        {
            empty = !Directory.EnumerateFileSystemEntries(dataDir).Any();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"could not open directory \"{dataDir}\": {OsError.Describe(e)}");
        }
        if (!empty)
            return false;
        OsCall(() => File.SetUnixFileMode(dataDir, OwnerOnly), "change the mode of directory", dataDir);
        try
        {
            OwnerOnlyFile.CreateExclusive(ConfigPath(dataDir), configText);
        }
        catch (OsCallException e) when (e.Errno == 17 /* EEXIST: a concurrent start initialised it */)
        {
            return false;
        }
        catch (ShmemException e)
        {
            throw new StartupException(e.Message, e.Detail, e.Hint);
        }
        return true;
    }

    /// <summary>rename(2) of a directory onto a path that must not hold anything: false when it does (EEXIST,
    /// ENOTEMPTY; an empty directory there is replaced, which is fine: it was about to be initialised).</summary>
    private static bool RenameDirectory(string from, string to)
    {
        try
        {
            OwnerOnlyFile.Rename(from, to);
            return true;
        }
        catch (OsCallException e) when (e.Errno is 17 or 39 /* EEXIST, ENOTEMPTY */)
        {
            return false;
        }
    }

    private static void RemoveTemporary(string temp)
    {
        try
        {
            if (Directory.Exists(temp))
                Directory.Delete(temp, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // best effort: a leftover ".NAME.init-PID" directory is harmless and named after its creator
        }
    }

    private static FileStat? Stat(string path)
    {
        try
        {
            return FileStat.TryStat(path);
        }
        catch (OsCallException e)
        {
            throw new StartupException($"could not access \"{path}\": {OsError.Text(e.Errno)}");
        }
    }

    private static void OsCall(Action action, string what, string path)
    {
        try
        {
            action();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"could not {what} \"{path}\": {OsError.Describe(e)}");
        }
    }

    public static bool IsRoot() => CurrentUid() == 0;

    private static uint CurrentUid() => (uint)Shmem.Os.ProcessControl.EffectiveUid;
}
