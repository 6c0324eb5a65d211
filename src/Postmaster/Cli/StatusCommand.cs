using System.CommandLine;
using System.Text.Json;
using Postmaster.Daemon;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;
using Postmaster.Supervision;

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
            try
            {
                return Run(pr);
            }
            catch (CliException e) when (e.ExitCode != ExitCodes.Usage)
            {
                Report.Error(e.Message, e.Detail, e.Hint);
                return ExitCodes.NoDataDirectory;
            }
            catch (Shmem.Errors.ShmemException e)
            {
                // the lock file cannot be opened or is not a regular file: the directory is not usable
                Report.Error(e.Message, e.Detail, e.Hint);
                return ExitCodes.NoDataDirectory;
            }
        });
        return cmd;
    }

    private static int Run(ParseResult pr)
    {
        var dir = CliOptions.ResolveDataDir(pr);
        bool json = pr.GetValue(CliOptions.Json);
        DataDirectoryCheck.Require(dir, ExitCodes.NoDataDirectory);
        using var state = DataDirLockFile.Inspect(dir);
        if (!state.Locked)
        {
            // Only a stopped server is judged by its configuration file: a running one is running whatever the file.
            if (!File.Exists(DataDirectory.ConfigPath(dir)))
            {
                Report.Error($"directory \"{dir}\" is not a data directory (no {DataDirectory.ConfigFileName})");
                return ExitCodes.NoDataDirectory;
            }
            if (json)
                JsonOut.Print(w => { w.WriteStartObject(); w.WriteBoolean("running", false); w.WriteString("dataDirectory", dir); w.WriteEndObject(); });
            else
                Console.WriteLine("postmaster: no server running");
            return ExitCodes.NotRunning;
        }
        int? pid = state.Holder?.Pid;
        if (pid is null)
            Report.Warning(ServerControl.Damaged(state).Message);
        var contents = state.Contents ?? new LockFileContents(0, dir, 0, null, null, null, null, null, null);
        var backends = ReadBackends(dir, contents, out var workers, out var recovery);
        var byPid = backends.Where(b => b.Slot.Pid > 0).GroupBy(b => b.Slot.Pid).ToDictionary(g => g.Key, g => g.First().Slot);
        if (json)
            JsonOut.Print(w => WriteJson(w, dir, pid, contents, state.Unproven, backends, workers, byPid, recovery));
        else
            WriteText(dir, pid, contents, backends, workers, byPid, recovery);
        return ExitCodes.Ok;
    }

    private static string StartedAt(LockFileContents c) =>
        DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(c.StartTime, 0, 253402300799)).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ");

    /// <summary>A backend's pid for printing: a backend that is still starting has none yet (0 in its slot).</summary>
    public static string PidText(int pid) => pid > 0 ? pid.ToString() : "-";

    /// <summary>Writes a pid, or null when it is 0 or unknown (never 0 as a pid).</summary>
    public static void WritePid(Utf8JsonWriter w, string name, int? pid)
    {
        if (pid is > 0)
            w.WriteNumber(name, pid.Value);
        else
            w.WriteNull(name);
    }

    /// <summary>The backends in the running instance's slot array (empty while it starts or if it cannot be read), the
    /// configured workers and the crash-recovery totals (null then).</summary>
    private static List<(BackendSlotInfo Slot, int Dsm)> ReadBackends(string dir, LockFileContents c, out List<WorkerStatus> workers,
        out RecoveryTotals? recovery)
    {
        var list = new List<(BackendSlotInfo, int)>();
        workers = new List<WorkerStatus>();
        recovery = null;
        if (c.TrimmedStatus == PmStatus.Starting || c.ShmKey is not long key || c.ShmId is not long id)
            return list;
        try
        {
            var dirStat = FileStat.TryStat(dir);
            if (dirStat is null)
                return list;
            using var shmem = InstanceShmem.Attach(SharedMemoryDescriptor.KindOr(c.ShmType, SegmentKind.SysV), key, id, dirStat.Value);
            workers = shmem.WorkerStatus.Read() ?? workers;
            recovery = InstanceCounters.Open(shmem.Main.Index, out _)?.Recovery;
            using var dsm = InstanceAccess.AttachDsm(shmem, c, dir);
            var attached = (dsm?.Inspect() ?? Array.Empty<Shmem.Dsm.DsmSegmentInfo>())
                .SelectMany(seg => seg.AttachedBy.Where(a => a.Attached).Select(a => a.Slot))
                .GroupBy(slot => slot).ToDictionary(g => g.Key, g => g.Count());
            for (int i = 0; i < shmem.Slots.Count; i++)
            {
                var info = shmem.Slots.Read(i);
                if (info.State != BackendSlotState.Unused)
                    list.Add((info, attached.GetValueOrDefault(i)));
            }
        }
        catch (Shmem.Errors.ShmemException)
        {
            // the server is stopping and removed its segment meanwhile: report it without backends
        }
        return list;
    }

    private static string StateText(BackendSlotInfo b) => b switch
    {
        { Pooled: true, State: BackendSlotState.Active } => "idle (pool)",
        { State: BackendSlotState.Active } => "running",
        _ => "starting",
    };

    private static string Iso(long unixMs) => DateTimeOffset.FromUnixTimeMilliseconds(unixMs).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ");

    private static void WriteText(string dir, int? pid, LockFileContents c, List<(BackendSlotInfo Slot, int Dsm)> backends,
        List<WorkerStatus> workers, Dictionary<int, BackendSlotInfo> byPid, RecoveryTotals? recovery)
    {
        Console.WriteLine(pid is int p ? $"postmaster: server is running (PID: {p})" : "postmaster: server is running (PID unknown: its lock file is damaged)");
        Console.WriteLine($"state:            {c.TrimmedStatus}");
        Console.WriteLine($"data directory:   {dir}");
        Console.WriteLine($"started at:       {StartedAt(c)}");
        Console.WriteLine($"shared memory:    {c.ShmType} key {c.ShmKey} id {c.ShmId} size {c.ShmSize}");
        if (recovery is { } r)
            Console.WriteLine($"crash recovery:   {r.FullRestarts} full restarts, {r.Reconciles} reconciled crashes");
        WorkerStatusView.WriteText(workers, byPid);
        Console.WriteLine($"backends:         {backends.Count}");
        if (backends.Count == 0)
            return;
        Console.WriteLine($"  {"pid",8} {"slot",5} {"name",-24} {"entry",-16} {"state",-12} {"restarts",8} {"dsm",4}  started at");
        foreach (var (b, dsm) in backends)
        {
            Console.WriteLine($"  {PidText(b.Pid),8} {b.Slot,5} {b.Name,-24} {b.Entry,-16} {StateText(b),-12} {b.Restarts,8} {dsm,4}  {Iso(b.StartedAtUnixMs)}{SessionText(b)}");
        }
    }

    private static void WriteJson(Utf8JsonWriter w, string dir, int? pid, LockFileContents c, string? damaged,
        List<(BackendSlotInfo Slot, int Dsm)> backends, List<WorkerStatus> workers, Dictionary<int, BackendSlotInfo> byPid,
        RecoveryTotals? recovery)
    {
        w.WriteStartObject();
        w.WriteBoolean("running", true);
        WritePid(w, "pid", pid);
        if (damaged is not null)
            w.WriteString("lockFileDamaged", damaged);
        w.WriteString("state", c.TrimmedStatus);
        w.WriteString("dataDirectory", dir);
        w.WriteString("startedAt", StartedAt(c));
        w.WriteStartObject("sharedMemory");
        w.WriteString("type", c.ShmType);
        if (c.ShmKey is long key) w.WriteNumber("key", key); else w.WriteNull("key");
        if (c.ShmId is long id) w.WriteNumber("id", id); else w.WriteNull("id");
        if (c.ShmSize is long size) w.WriteNumber("size", size); else w.WriteNull("size");
        w.WriteEndObject();
        if (recovery is { } r)
        {
            w.WriteNumber("fullRestarts", r.FullRestarts);
            w.WriteNumber("reconciles", r.Reconciles);
        }
        else
        {
            w.WriteNull("fullRestarts");
            w.WriteNull("reconciles");
        }
        WorkerStatusView.WriteJson(w, workers, byPid);
        w.WriteStartArray("backends");
        foreach (var (b, dsm) in backends)
        {
            w.WriteStartObject();
            WritePid(w, "pid", b.Pid);
            w.WriteNumber("slot", b.Slot);
            w.WriteString("name", b.Name);
            w.WriteString("entry", b.Entry);
            w.WriteString("state", StateText(b));
            w.WriteBoolean("pool", b.Pooled);
            w.WriteString("startedAt", Iso(b.StartedAtUnixMs));
            w.WriteNumber("restarts", b.Restarts);
            w.WriteNumber("dsmSegments", dsm);
            WriteSession(w, b);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>A connection backend's session in text ("" for other backends), after its row.</summary>
    internal static string SessionText(BackendSlotInfo b) => b.Entry != ConnectionHostArgument.Entry ? ""
        : b.Session.Client.Length > 0
            ? $"  session {b.Session.Id} ({b.Session.Count} served{(b.Session.Open > 1 ? $", {b.Session.Open} open" : "")}) from {b.Session.Client} since {Iso(b.Session.StartedAtUnixMs)}"
            : $"  {b.Session.Count} sessions served";

    /// <summary>A connection backend's <c>session</c> object (nothing for other backends).</summary>
    internal static void WriteSession(Utf8JsonWriter w, BackendSlotInfo b)
    {
        if (b.Entry != ConnectionHostArgument.Entry)
            return;
        w.WriteStartObject("session");
        if (b.Session.Client.Length > 0)
        {
            w.WriteNumber("id", b.Session.Id);
            w.WriteString("client", b.Session.Client);
            w.WriteString("startedAt", Iso(b.Session.StartedAtUnixMs));
        }
        else
        {
            w.WriteNull("id");
            w.WriteNull("client");
            w.WriteNull("startedAt");
        }
        w.WriteNumber("served", b.Session.Count);
        w.WriteNumber("open", b.Session.Client.Length > 0 ? Math.Max(1, b.Session.Open) : 0);
        w.WriteEndObject();
    }
}
