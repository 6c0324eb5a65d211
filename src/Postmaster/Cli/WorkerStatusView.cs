using System.Text.Json;
using Postmaster.Shmem.Backends;

namespace Postmaster.Cli;

/// <summary>The configured workers section of <c>status</c>: every configured instance in every state (see
/// <see cref="WorkerRunState"/>); "starting" is a running instance whose backend has not attached yet.</summary>
internal static class WorkerStatusView
{
    public static string StateText(WorkerStatus w, IReadOnlyDictionary<int, BackendSlotInfo> byPid) => w.State switch
    {
        WorkerRunState.Running when w.Pid > 0 && byPid.TryGetValue(w.Pid, out var b) && b.State == BackendSlotState.Active => "running",
        WorkerRunState.Running => "starting",
        WorkerRunState.Backoff => "backoff",
        WorkerRunState.Stopped => "stopped",
        WorkerRunState.Failed => "failed",
        WorkerRunState.Done => "done",
        _ => "pending",
    };

    private static string? Iso(long unixMs) => unixMs <= 0 ? null
        : DateTimeOffset.FromUnixTimeMilliseconds(unixMs).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ");

    public static void WriteText(IReadOnlyList<WorkerStatus> workers, IReadOnlyDictionary<int, BackendSlotInfo> byPid)
    {
        Console.WriteLine($"workers:          {workers.Count} configured");
        if (workers.Count == 0)
            return;
        Console.WriteLine($"  {"name",-24} {"state",-9} {"pid",8} {"restarts",8} {"failures",8}  next start / last exit");
        foreach (var w in workers)
        {
            string pid = w.Pid > 0 ? w.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture) : "-";
            string more = w.State == WorkerRunState.Backoff && Iso(w.NextStartUnixMs) is { } next ? $"next start {next}" : "";
            if (w.LastExit.Length > 0)
                more += (more.Length > 0 ? "; " : "") + $"last exit: {w.LastExit}";
            Console.WriteLine($"  {w.Name,-24} {StateText(w, byPid),-9} {pid,8} {w.Restarts,8} {w.Failures,8}  {more}");
        }
    }

    public static void WriteJson(Utf8JsonWriter j, IReadOnlyList<WorkerStatus> workers, IReadOnlyDictionary<int, BackendSlotInfo> byPid)
    {
        j.WriteStartArray("workers");
        foreach (var w in workers)
        {
            j.WriteStartObject();
            j.WriteString("name", w.Name);
            j.WriteString("state", StateText(w, byPid));
            if (w.Pid > 0) j.WriteNumber("pid", w.Pid); else j.WriteNull("pid");
            j.WriteNumber("restarts", w.Restarts);
            j.WriteNumber("failures", w.Failures);
            if (w.State == WorkerRunState.Backoff && Iso(w.NextStartUnixMs) is { } next) j.WriteString("nextStartAt", next); else j.WriteNull("nextStartAt");
            if (w.LastExit.Length > 0) j.WriteString("lastExit", w.LastExit); else j.WriteNull("lastExit");
            if (Iso(w.LastExitUnixMs) is { } at) j.WriteString("lastExitAt", at); else j.WriteNull("lastExitAt");
            j.WriteEndObject();
        }
        j.WriteEndArray();
    }
}
