using System.CommandLine;
using System.Text.Json;
using Postmaster.Daemon;
using Postmaster.Shmem.LockFile;

namespace Postmaster.Cli;

/// <summary>
/// <c>postmaster status</c>: exit 0 when running, 3 when not, 4 when the data directory is missing or not
/// accessible (pg_ctl and the LSB init-script codes). Everything comes from the lock file, which a live daemon holds
/// locked; a zombie or dead daemon holds nothing and is reported as not running.
/// </summary>
public static class StatusCommand
{
    public static Command Create()
    {
        var cmd = new Command("status", "Show whether the server is running (exit 0), not running (3) or the directory is unusable (4)")
        {
            CliOptions.DataDir, CliOptions.Json,
        };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            if (dir is null)
                return ExitCodes.NoDataDirectory;
            bool json = pr.GetValue(CliOptions.Json);
            if (!Directory.Exists(dir))
            {
                Report.Error($"directory \"{dir}\" does not exist");
                return ExitCodes.NoDataDirectory;
            }
            if (!File.Exists(DataDirectory.ConfigPath(dir)))
            {
                Report.Error($"directory \"{dir}\" is not a data directory (no {DataDirectory.ConfigFileName})");
                return ExitCodes.NoDataDirectory;
            }
            LockFileContents? running;
            try
            {
                running = ServerControl.FindRunning(dir);
            }
            catch (Shmem.Errors.OsCallException e)
            {
                Report.Error(e.Message);
                return ExitCodes.NoDataDirectory;
            }
            if (running is null)
            {
                if (json)
                    JsonOut.Print(w => { w.WriteStartObject(); w.WriteBoolean("running", false); w.WriteString("dataDirectory", dir); w.WriteEndObject(); });
                else
                    Console.WriteLine("postmaster: no server running");
                return ExitCodes.NotRunning;
            }
            if (json)
                JsonOut.Print(w => WriteJson(w, dir, running));
            else
                WriteText(dir, running);
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static string StartedAt(LockFileContents c) =>
        DateTimeOffset.FromUnixTimeSeconds(c.StartTime).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ");

    private static void WriteText(string dir, LockFileContents c)
    {
        Console.WriteLine($"postmaster: server is running (PID: {c.Pid})");
        Console.WriteLine($"state:            {c.TrimmedStatus}");
        Console.WriteLine($"data directory:   {dir}");
        Console.WriteLine($"started at:       {StartedAt(c)}");
        Console.WriteLine($"shared memory:    {c.ShmType} key {c.ShmKey} id {c.ShmId} size {c.ShmSize}");
    }

    private static void WriteJson(Utf8JsonWriter w, string dir, LockFileContents c)
    {
        w.WriteStartObject();
        w.WriteBoolean("running", true);
        w.WriteNumber("pid", c.Pid);
        w.WriteString("state", c.TrimmedStatus);
        w.WriteString("dataDirectory", dir);
        w.WriteString("startedAt", StartedAt(c));
        w.WriteStartObject("sharedMemory");
        w.WriteString("type", c.ShmType);
        if (c.ShmKey is long key) w.WriteNumber("key", key); else w.WriteNull("key");
        if (c.ShmId is long id) w.WriteNumber("id", id); else w.WriteNull("id");
        if (c.ShmSize is long size) w.WriteNumber("size", size); else w.WriteNull("size");
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
