using System.Diagnostics;
using System.Globalization;
using System.Text;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Os;

namespace Postmaster.Bench.Suites.Backends;

public sealed partial class BackendsSuite
{
    private static readonly (int Workers, int Runs)[] s_crash = [(4, 15), (20, 10)];
    private const int CrashWarmUp = 2;
    private const double ReconcileTargetMs = 5;
    private const double FullRestartTargetMs = 150;
    private const double PostgresCrashRestartMs = 210;

    /// <summary>
    /// (a) SIGKILL of an idle static worker → the postmaster reaped it, reconciled its slot and freed it (the slot
    /// leaves Active; the bench polls it every 50 µs from the kill on; the "reconciled" log line, ms resolution,
    /// as a cross-check). (b) SIGKILL of a lock-hold worker → full restart → all N static workers running again with
    /// new pids in the new segment; the lock file's status line shows "starting" → "ready" on the way.
    /// </summary>
    private static void Crash(StringBuilder report)
    {
        var reconcileRows = new List<string[]>();
        var restartRows = new List<string[]>();
        double reconcile4 = double.NaN, restart4 = double.NaN;
        foreach (var (n, runs) in s_crash)
        {
            var r = Reconcile(n, runs);
            reconcileRows.Add([Int(n), Int(runs), Markdown.Ms(r.Gone), Markdown.Ms(r.ExitLog), Markdown.Ms(r.Log), Markdown.Ms(r.Freed),
                Markdown.Verdict(r.Freed < ReconcileTargetMs, $"< {ReconcileTargetMs} ms")]);
            var f = FullRestart(n, runs);
            restartRows.Add([Int(n), Int(runs), Markdown.Ms(f.Noticed), Markdown.Ms(f.AllGone), Markdown.Ms(f.Ready), Markdown.Ms(f.AllRunning),
                Markdown.Ratio(f.AllRunning, PostgresCrashRestartMs),
                n == 4 ? Markdown.Verdict(f.AllRunning < FullRestartTargetMs, $"< {FullRestartTargetMs} ms") : "—"]);
            if (n == 4)
                (reconcile4, restart4) = (r.Freed, f.AllRunning);
        }
        report.AppendLine("## 5. Crash recovery");
        report.AppendLine();
        report.AppendLine("(a) SIGKILL of one idle static worker (`crash_recovery = reconcile`, `backend_pool_size = 0`, " +
                          "`worker.idle.count = N`, restart delay 50 ms). Timed from just before kill(2). \"Process gone\": " +
                          "`/proc/PID/stat` shows a zombie or nothing. \"Reconcile complete\": the victim's slot leaves Active (the " +
                          "postmaster frees it right after logging \"reconciled N dynamic shared memory references\"); the bench " +
                          $"polls the slot in shared memory every {PollMicroseconds} µs (a futex timed wait, so it leaves the CPU " +
                          "to the postmaster in between). The two log columns are the timestamps of the postmaster's \"… was terminated " +
                          "by signal 9\" and \"reconciled …\" lines minus the wall-clock kill time, with the log's millisecond " +
                          $"resolution (±1 ms). The victim rotates over the workers; {CrashWarmUp} warm-up kills discarded.");
        report.AppendLine();
        report.Append(Markdown.Table(["N workers", "kills", "kill → process gone", "kill → exit logged (log, ms)",
            "kill → \"reconciled\" logged (log, ms)", "kill → reconcile complete (slot freed)", "target"], reconcileRows));
        report.AppendLine();
        report.AppendLine("(b) SIGKILL of a `lock-hold` worker (it holds an LWLock, so shared memory may be corrupt and the " +
                          "postmaster must restart everything): N static workers = 1 `lock-hold` + (N − 1) `idle`, " +
                          "`backend_pool_size = 0`. Noticed: the lock file's status line turns \"starting\". All gone: the \"all " +
                          "backends terminated; reinitializing\" log line (ms resolution). Ready: status \"ready\" again, with the " +
                          "new segment's key. All running: N workers Active in the new segment, none with an old pid. The lock " +
                          $"file is polled every {PollMicroseconds} µs until ready, then the slots every millisecond (so the bench " +
                          "does not take CPU from the N starting backends). " +
                          "Reference: PostgreSQL 15 takes ~210 ms from a backend's kill -9 to accepting connections (quoted).");
        report.AppendLine();
        report.Append(Markdown.Table(["N workers", "kills", "kill → noticed", "→ all backends gone", "→ ready (shared memory rebuilt)",
            "→ all N running again", "÷ PostgreSQL 210 ms", "target"], restartRows));
        report.AppendLine();
        report.AppendLine($"Targets: reconcile < {ReconcileTargetMs} ms: {Markdown.Verdict(reconcile4 < ReconcileTargetMs, Markdown.Ms(reconcile4) + " with 4")}; " +
                          $"full restart with 4 workers < {FullRestartTargetMs} ms: {Markdown.Verdict(restart4 < FullRestartTargetMs, Markdown.Ms(restart4))}.");
        report.AppendLine();
    }

    private static (double Gone, double Freed, double ExitLog, double Log) Reconcile(int n, int runs)
    {
        Console.WriteLine($"crash (reconcile): {n} workers");
        var settings = BaseSettings(maxBackends: n + 8, poolSize: 0);
        settings["worker.idle.entry"] = "'idle'";
        settings["worker.idle.count"] = Int(n);
        settings["worker.idle.restart_delay"] = "'50ms'";
        settings["worker.idle.restart_delay_max"] = "'50ms'";
        using var server = BenchServer.Start($"reconcile-{n}", settings);
        var gone = new List<double>();
        var freed = new List<double>();
        var log = new List<double>();
        var exitLog = new List<double>();
        for (int i = 0; i < runs + CrashWarmUp; i++)
        {
            var list = server.WaitForSteadyState(n, 0);
            Thread.Sleep(Settle);
            var victim = list[i % n];
            var slots = server.Shmem.Slots;
            var wall = DateTime.UtcNow;
            long t0 = Stopwatch.GetTimestamp();
            ProcessControl.Signal(victim.Pid, Signals.SIGKILL);
            long tGone = 0, tFreed = 0;
            while (tFreed == 0)
            {
                if (tGone == 0 && !ProcessControl.IsAlive(victim.Pid))
                    tGone = Stopwatch.GetTimestamp();
                if (slots.StateOf(victim.Slot) != BackendSlotState.Active || slots.Read(victim.Slot).Pid != victim.Pid)
                    tFreed = Stopwatch.GetTimestamp();
                if (Ms(Stopwatch.GetTimestamp() - t0) > BenchServer.WaitLimit.TotalMilliseconds)
                    throw new TimeoutException($"slot {victim.Slot} was not released after PID {victim.Pid} was killed");
                PollPause();
            }
            if (tGone == 0)
                tGone = tFreed;
            var logged = WaitForLogLine(server, $"(PID {victim.Pid})", "reconciled");
            var exited = WaitForLogLine(server, $"(PID {victim.Pid}) was terminated by signal", null);
            if (i < CrashWarmUp)
                continue;
            gone.Add(Ms(tGone - t0));
            freed.Add(Ms(tFreed - t0));
            log.Add((logged - wall).TotalMilliseconds);
            exitLog.Add((exited - wall).TotalMilliseconds);
        }
        return (Median(gone), Median(freed), Median(exitLog), Median(log));
    }

    private static (double Noticed, double AllGone, double Ready, double AllRunning) FullRestart(int n, int runs)
    {
        Console.WriteLine($"crash (full restart): {n} workers");
        var settings = BaseSettings(maxBackends: n + 8, poolSize: 0);
        settings["worker.lock.entry"] = "'lock-hold'";
        settings["worker.idle.entry"] = "'idle'";
        settings["worker.idle.count"] = Int(n - 1);
        settings["crash_restart_limit"] = "1000";
        using var server = BenchServer.Start($"restart-{n}", settings);
        var noticed = new List<double>();
        var allGone = new List<double>();
        var ready = new List<double>();
        var running = new List<double>();
        for (int i = 0; i < runs + CrashWarmUp; i++)
        {
            var list = server.WaitForSteadyState(n, 0);
            Thread.Sleep(Settle);
            var victim = list.Single(b => b.Entry == "lock-hold");
            var old = list.Select(b => b.Pid).ToHashSet();
            long oldId = server.ReadLockFile()?.ShmId ?? throw new InvalidOperationException("no lock file");
            var wall = DateTime.UtcNow;
            long t0 = Stopwatch.GetTimestamp();
            ProcessControl.Signal(victim.Pid, Signals.SIGKILL);
            long tNoticed = 0, tReady = 0, tRunning = 0;
            while (tRunning == 0)
            {
                long now = Stopwatch.GetTimestamp();
                if (Ms(now - t0) > BenchServer.WaitLimit.TotalMilliseconds)
                    throw new TimeoutException("the server did not restart after a lock holder was killed");
                if (tReady == 0)
                {
                    var c = server.ReadLockFile();
                    if (tNoticed == 0 && c?.TrimmedStatus == "starting")
                        tNoticed = now;
                    if (c is { ShmId: long id } && id != oldId && c.TrimmedStatus == "ready")
                        tReady = now;
                }
                else if (server.Backends().Count(b => b.State == BackendSlotState.Active && !b.Pooled && !old.Contains(b.Pid)) == n)
                {
                    tRunning = now;
                }
                // Until ready: short pauses (the interesting part is a few ms long). Then the N new backends need both
                // cores for their start-up, so the bench looks only every millisecond.
                if (tReady == 0)
                    PollPause();
                else
                    Thread.Sleep(1);
            }
            if (tNoticed == 0)
                tNoticed = tReady; // never saw "starting": the whole reinitialisation fell between two reads
            var terminated = WaitForLogLine(server, "all backends terminated; reinitializing", null, after: wall);
            if (i < CrashWarmUp)
                continue;
            noticed.Add(Ms(tNoticed - t0));
            allGone.Add((terminated - wall).TotalMilliseconds);
            ready.Add(Ms(tReady - t0));
            running.Add(Ms(tRunning - t0));
        }
        return (Median(noticed), Median(allGone), Median(ready), Median(running));
    }

    /// <summary>The timestamp (UTC) of the first log line containing both texts, logged at or after
    /// <paramref name="after"/> (milliseconds are what the log has).</summary>
    private static DateTime WaitForLogLine(BenchServer server, string text, string? also, DateTime? after = null)
    {
        var sw = Stopwatch.StartNew();
        var notBefore = after?.AddMilliseconds(-1) ?? DateTime.MinValue;
        while (true)
        {
            foreach (var line in File.ReadLines(server.LogPath))
            {
                if (!line.Contains(text, StringComparison.Ordinal) || (also is not null && !line.Contains(also, StringComparison.Ordinal)))
                    continue;
                var at = DateTime.ParseExact(line[..23], "yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture,
                    DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
                if (at >= notBefore)
                    return at;
            }
            if (sw.Elapsed > TimeSpan.FromSeconds(10))
                throw new TimeoutException($"no log line with \"{text}\" in {server.LogPath}");
            Thread.Sleep(2);
        }
    }
}
