using Postmaster.Shmem.Os;

namespace Postmaster.Daemon;

/// <summary>The data directory: PostgreSQL's checkDataDir rules, and creation by <c>init</c>.</summary>
public static class DataDirectory
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

    /// <summary>Creates <paramref name="dataDir"/> (mode 0700) with a default configuration file. Refuses a
    /// non-empty directory; an existing empty one gets its mode fixed.</summary>
    public static void Initialize(string dataDir, string configText)
    {
        if (File.Exists(dataDir))
            throw new StartupException($"\"{dataDir}\" exists but is not a directory");
        if (Directory.Exists(dataDir))
        {
            if (Directory.EnumerateFileSystemEntries(dataDir).Any())
                throw new StartupException($"directory \"{dataDir}\" exists but is not empty",
                    hint: $"If you want to create a new data directory, either remove or empty the directory \"{dataDir}\", " +
                          "or run init with an argument other than that.");
            File.SetUnixFileMode(dataDir, OwnerOnly);
        }
        else
        {
            Directory.CreateDirectory(dataDir, OwnerOnly);
            File.SetUnixFileMode(dataDir, OwnerOnly); // the umask may have removed bits
        }
        var config = ConfigPath(dataDir);
        using (var fs = new FileStream(config, new FileStreamOptions
               {
                   Mode = FileMode.CreateNew, Access = FileAccess.Write,
                   UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
               }))
        using (var w = new StreamWriter(fs))
            w.Write(configText);
    }

    public static bool IsRoot() => CurrentUid() == 0;

    private static uint CurrentUid() => (uint)Shmem.Os.ProcessControl.EffectiveUid;
}
