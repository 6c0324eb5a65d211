using Postmaster.Daemon;
using Postmaster.Shmem.Os;

namespace Postmaster.Connections;

/// <summary>
/// The lock file beside a Unix-domain socket (PostgreSQL's <c>.s.PGSQL.PORT.lock</c>): line 1 the postmaster's PID,
/// line 2 its data directory. Taken before the socket is created: a lock file naming a running process other than this
/// one means another instance owns the socket (FATAL); one naming a process that is gone is stale and is replaced
/// together with its socket.
/// </summary>
internal static class SocketLockFile
{
    public static void Take(string lockPath, string socketPath, string dir)
    {
        for (int attempt = 0; attempt < 10; attempt++)
        {
            try
            {
                using var f = new FileStream(lockPath, FileMode.CreateNew, FileAccess.Write, FileShare.Read, 1,
                    FileOptions.None) { };
                File.SetUnixFileMode(lockPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                var text = System.Text.Encoding.UTF8.GetBytes($"{ProcessControl.CurrentPid}\n{dir}\n");
                f.Write(text);
                return;
            }
            catch (IOException) when (File.Exists(lockPath))
            {
                int? pid = ReadPid(lockPath);
                if (pid is null)
                {
                    // Empty or unreadable: another server may be between creating and writing it (PostgreSQL's
                    // "lock file is empty"). Look again shortly; never take it over.
                    if (attempt < 9)
                    {
                        Thread.Sleep(100);
                        continue;
                    }
                    throw new StartupException($"lock file \"{lockPath}\" is empty",
                        hint: "Either another server is starting, or the lock file is the remnant of a previous server startup crash.");
                }
                if (pid is int p && p != ProcessControl.CurrentPid && ProcessControl.IsAlive(p))
                    throw new StartupException($"lock file \"{lockPath}\" already exists",
                        hint: $"Is another postmaster (PID {p}) using socket file \"{socketPath}\"?");
                try
                {
                    File.Delete(lockPath); // stale: its process is gone (or it is this process's PID from an old life)
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new StartupException($"could not remove old lock file \"{lockPath}\": {e.Message}",
                        hint: "The file seems accidentally left over, but it could not be removed. Please remove the file by hand and try again.");
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new StartupException($"could not create lock file \"{lockPath}\": {e.Message}");
            }
        }
        throw new StartupException($"could not create lock file \"{lockPath}\": it keeps reappearing");
    }

    /// <summary>Removes the lock file if it is still this process's.</summary>
    public static void Remove(string lockPath)
    {
        try
        {
            if (ReadPid(lockPath) == ProcessControl.CurrentPid)
                File.Delete(lockPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static int? ReadPid(string lockPath)
    {
        try
        {
            string text = File.ReadAllText(lockPath);
            int nl = text.IndexOf('\n');
            return int.TryParse(nl < 0 ? text : text[..nl], out int pid) && pid > 1 ? pid : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
