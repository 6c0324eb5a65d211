using System.Text;
using Microsoft.Win32.SafeHandles;
using Postmaster.Configuration;
using Postmaster.Logging;
using Postmaster.Shmem;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;

namespace Postmaster.Daemon;

/// <summary>
/// Where a detached daemon's output goes before and after it holds the data directory's lock. Before: stdout and
/// stderr are a pipe to the <c>start</c> command that spawned it, so a daemon that fails before the lock (bad
/// configuration, another server running) tells only its own CLI and never writes into the data directory, whose log
/// belongs to whoever holds the lock. After: the daemon opens the log file itself (O_APPEND, created 0600), dup2s it
/// onto descriptors 1 and 2, and tells the CLI on the readiness pipe where its output starts in that file
/// ("locked OFFSET", and "json DIR" when JSON logging is on), so that the CLI can show exactly this daemon's lines if
/// it fails later. Messages logged while the lock is taken (e.g. a stale lock file removed) are kept and written to the
/// log once it is open.
/// </summary>
internal static class StartupOutput
{
    /// <summary>The readiness pipe's line saying the lock is held: "locked OFFSET" (OFFSET -1: no log file).</summary>
    public const string LockedLine = "locked";

    /// <summary>The readiness pipe's line naming the JSON log directory, when JSON logging is on.</summary>
    public const string JsonLine = "json";

    /// <summary>Console.Out and Console.Error write straight to descriptors 1 and 2 (the runtime's own writers use
    /// duplicates of them, which would keep the pipe open and miss the redirect to the log file).</summary>
    public static void UseStandardDescriptorsDirectly()
    {
        Console.SetOut(Writer(1));
        Console.SetError(Writer(2));
    }

    private static TextWriter Writer(int fd)
    {
        var stream = new FileStream(new SafeFileHandle(fd, ownsHandle: false), FileAccess.Write, bufferSize: 0);
        return new StreamWriter(stream, new UTF8Encoding(false), 4096, leaveOpen: true) { AutoFlush = true };
    }

    /// <summary>Creates the lock file (PostgreSQL's CreateDataDirLockFile), with what it logs held back in
    /// <paramref name="held"/>: if it fails, that goes to <paramref name="preLock"/> (stderr: the CLI) before the
    /// failure.</summary>
    public static DataDirLockFile CreateLockFile(string dataDir, LockFileListenLines listen, Action<LockFileContents> checkStale,
        HeldMessages held, Lazy<ServerLog> preLock)
    {
        try
        {
            return DataDirLockFile.Create(dataDir, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), listen, checkStale, held);
        }
        catch
        {
            if (held.Count > 0)
                held.WriteTo(new ShmemLogAdapter(preLock.Value));
            throw;
        }
    }

    /// <summary>SIGUSR2 (<c>postmaster logrotate</c>, a logrotate postrotate script): a detached daemon's log file is
    /// opened again by its path (a new file if it was moved away) and made stdout and stderr; the JSON log starts its
    /// next file. Runs on the signal thread; each writer sees the old file or the new one, never a torn descriptor.</summary>
    public static void ReopenLogs(StartOptions options, ServerLog log)
    {
        if (options.DaemonLog is { } path)
        {
            try
            {
                var (fd, _) = OwnerOnlyFile.OpenForAppend(path);
                using (fd)
                    OwnerOnlyFile.RedirectStandardOutput(fd, path);
            }
            catch (Exception e) when (e is Shmem.Errors.ShmemException or IOException or UnauthorizedAccessException)
            {
                log.Warning($"could not reopen log file \"{path}\": {e.Message}", hint: "The server keeps writing to the file it had open.");
                return;
            }
        }
        log.ReopenFiles();
        log.Log("log files reopened (SIGUSR2)");
    }

    /// <summary>
    /// With the lock held: for a detached daemon, opens its log file and makes it stdout and stderr, tells the CLI;
    /// then builds the configured log (which may create the JSON log directory: only now, under the lock) and writes
    /// the held messages to it.
    /// </summary>
    public static ServerLog OpenLog(StartOptions options, Settings settings, Lazy<ServerLog> bootstrap, HeldMessages held)
    {
        long offset = -1;
        if (options.DaemonLog is { } path)
        {
            try
            {
                string? parent = Path.GetDirectoryName(path);
                if (parent is not null)
                    Directory.CreateDirectory(parent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new StartupException($"could not create directory \"{Path.GetDirectoryName(path)}\": {OsError.Describe(e)}");
            }
            var (fd, size) = OwnerOnlyFile.OpenForAppend(path);
            using (fd)
                OwnerOnlyFile.RedirectStandardOutput(fd, path);
            offset = size;
        }
        if (options.ReadyFd is int ready)
        {
            ProcessSpawner.TryWrite(ready, $"{LockedLine} {offset}\n");
            if (settings.LogDestination is LogDestination.Json or LogDestination.Both)
                ProcessSpawner.TryWrite(ready, $"{JsonLine} {settings.ResolveLogDirectory(options.DataDir)}\n");
        }
        ServerLog log;
        try
        {
            log = PostmasterServer.CreateLog(settings, options.DataDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"could not create log directory \"{settings.ResolveLogDirectory(options.DataDir)}\": {OsError.Describe(e)}");
        }
        if (bootstrap.IsValueCreated)
            bootstrap.Value.Dispose();
        held.WriteTo(new ShmemLogAdapter(log));
        return log;
    }
}

/// <summary>Messages of the shared-memory layer kept until the log they belong to exists.</summary>
internal sealed class HeldMessages : IShmemLogger
{
    private readonly List<(ShmemLogLevel Level, string Message)> _messages = new();

    public int Count => _messages.Count;

    public void Write(ShmemLogLevel level, string message) => _messages.Add((level, message));

    public void WriteTo(IShmemLogger log)
    {
        foreach (var (level, message) in _messages)
            log.Write(level, message);
        _messages.Clear();
    }
}
