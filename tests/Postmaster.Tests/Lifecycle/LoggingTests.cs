using System.Text.Json;
using System.Text.RegularExpressions;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Lifecycle;

/// <summary>The instance's one log stream: every backend writes records to the log collector's pipe, the postmaster
/// writes them with its own to each destination (text on stderr or the log file, one JSON file), in one schema,
/// whole lines only, nothing lost when a backend crashes.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class LoggingTests
{
    private static string Chatty => $"{Path.Combine(Paths.OutDir, "testchild", "TestChild.dll")}:Postmaster.TestChild.Workers.ChattyWorker";

    private static readonly Regex TextLine = new(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC \[\d+\] (LOG|WARNING|FATAL|DEBUG1|DETAIL|HINT|CONTEXT|INFO|ERROR):  ");

    [Fact]
    public void Every_process_writes_one_json_schema_into_one_file()
    {
        using var pm = Clusters.Bare("jsonlog", "log_destination = both", "log_directory = 'jsonlogs'", $"worker.c.entry = '{Chatty}'",
            "worker.c.argument = '3:10000'");
        pm.Start();
        pm.WaitForLog("chatty done");
        int backend = pm.WaitForWorker("c", WorkerState.Running).Single().Pid!.Value;
        int postmaster = pm.PostmasterPid;
        pm.Stop();
        string dir = Path.Combine(pm.DataDirectory, "jsonlogs");
        var file = Directory.GetFiles(dir).Single();
        Assert.Matches(@"/postmaster-\d{8}\.json$", file);
        var lines = File.ReadAllLines(file).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.All(lines, l =>
        {
            Assert.Matches(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$", l.GetProperty("timestamp").GetString());
            Assert.False(string.IsNullOrEmpty(l.GetProperty("error_severity").GetString()));
            Assert.NotNull(l.GetProperty("message").GetString());
            Assert.Contains(l.GetProperty("backend_type").GetString(), new[] { "postmaster", "backend", "unknown" });
        });
        var ready = lines.Single(l => l.GetProperty("message").GetString()!.StartsWith("postmaster is ready", StringComparison.Ordinal));
        Assert.Equal(postmaster, ready.GetProperty("pid").GetInt32());
        Assert.Equal("postmaster", ready.GetProperty("backend_type").GetString());
        Assert.Equal("LOG", ready.GetProperty("error_severity").GetString());

        var mine = lines.Where(l => l.TryGetProperty("pid", out var p) && p.GetInt32() == backend).ToList();
        Assert.All(mine, l =>
        {
            Assert.Equal("backend", l.GetProperty("backend_type").GetString());
            Assert.Equal("c", l.GetProperty("worker").GetString());
            Assert.True(l.GetProperty("slot").GetInt32() >= 0);
        });
        // A record of 10000 characters crossed the pipe in several frames and arrives whole.
        var big = mine.Where(l => l.GetProperty("message").GetString()!.StartsWith("chatty ", StringComparison.Ordinal) &&
                                  l.GetProperty("message").GetString()!.Contains("/3 ")).ToList();
        Assert.Equal(3, big.Count);
        Assert.All(big, l => Assert.Equal(10000, l.GetProperty("message").GetString()!.Length));
        Assert.Contains(mine, l => l.GetProperty("message").GetString() == "chatty first line\nchatty second line");
        // What the backend wrote to stdout and stderr itself is kept, as plain text of an unknown writer.
        Assert.Contains(lines, l => l.GetProperty("message").GetString() == $"chatty raw stdout {backend}" && l.GetProperty("backend_type").GetString() == "unknown");
        Assert.Contains(lines, l => l.GetProperty("message").GetString() == $"chatty raw stderr {backend}");
        // The text log has the same, every line of a record with its prefix.
        string text = pm.ServerLog();
        Assert.Contains($"[{backend}] LOG:  chatty first line\n", text);
        Assert.Matches(new Regex($@"\[{backend}\] \tchatty second line\n"), text);
        Assert.DoesNotContain(Directory.GetFiles(dir), f => Path.GetFileName(f).StartsWith("c-", StringComparison.Ordinal));
    }

    [Fact]
    public void Many_backends_logging_at_once_give_whole_lines_and_lose_nothing()
    {
        const int workers = 4, count = 300, size = 6000;
        using var pm = Clusters.Bare("logstorm", $"worker.c.entry = '{Chatty}'", $"worker.c.argument = '{count}:{size}'", $"worker.c.count = {workers}");
        pm.Start();
        pm.WaitUntil(() => pm.ServerLogLines().Count(l => l.EndsWith("LOG:  chatty done", StringComparison.Ordinal)) == workers, "every worker's last line");
        pm.Stop();
        var lines = pm.ServerLogLines();
        foreach (string line in lines)
            Assert.True(TextLine.IsMatch(line) || line.StartsWith("chatty raw ", StringComparison.Ordinal) || Regex.IsMatch(line, @"^\S+ \S+ UTC \[\d+\] \t"),
                $"not a whole log line: {line[..Math.Min(200, line.Length)]}");
        var chatty = lines.Where(l => Regex.IsMatch(l, @"LOG:  chatty \d+/")).ToList();
        Assert.Equal(workers * count, chatty.Count);
        Assert.All(chatty, l => Assert.EndsWith(new string('x', 100), l));
        Assert.All(chatty, l => Assert.Equal(size, l[(l.IndexOf("LOG:  ", StringComparison.Ordinal) + 6)..].Length));
    }

    [Fact]
    public void What_a_backend_logged_before_it_was_killed_is_kept()
    {
        using var pm = Clusters.Bare("loglast", $"worker.c.entry = '{Chatty}'", "worker.c.argument = '50:3000:kill'", "worker.c.restart = never");
        pm.Start();
        pm.WaitForLog("terminated by signal 9");
        pm.Stop();
        var lines = pm.ServerLogLines().ToList();
        Assert.Equal(50, lines.Count(l => Regex.IsMatch(l, @"LOG:  chatty \d+/50 ")));
        Assert.Contains(lines, l => l.EndsWith("LOG:  chatty done", StringComparison.Ordinal));
        int done = lines.FindIndex(l => l.EndsWith("LOG:  chatty done", StringComparison.Ordinal));
        int died = lines.FindIndex(l => l.Contains("terminated by signal 9", StringComparison.Ordinal));
        Assert.True(done < died, "the last words come before the postmaster's report of the death");
    }

    [Fact]
    public void Logrotate_reopens_the_log_file_after_it_was_moved_away()
    {
        using var pm = Clusters.Bare("logrotate", "log_destination = both", "log_directory = 'jsonlogs'", $"worker.c.entry = '{Chatty}'", "worker.c.argument = '1:10'");
        pm.Start();
        pm.WaitForLog("chatty done");
        string log = Path.Combine(pm.DataDirectory, "log", "postmaster.log");
        string moved = log + ".1";
        File.Move(log, moved);
        string json = Directory.GetFiles(Path.Combine(pm.DataDirectory, "jsonlogs")).Single();
        File.Move(json, json + ".1");
        var r = pm.Run("logrotate");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("server signaled", r.Stdout.Trim());
        pm.WaitUntil(() => File.Exists(log) && File.ReadAllText(log).Contains("log files reopened (SIGUSR2)"), "the new log file");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(log));
        pm.Terminate("c"); // the backend's last words go to the new file too
        pm.WaitUntil(() => File.ReadAllText(log).Contains("terminating background worker \"c\""), "the backend's line in the new file");
        Assert.DoesNotContain("log files reopened", File.ReadAllText(moved));
        Assert.Contains("chatty done", File.ReadAllText(moved));
        Assert.Contains(Directory.GetFiles(Path.Combine(pm.DataDirectory, "jsonlogs")), f => f.EndsWith(".json", StringComparison.Ordinal));
        pm.Stop();
        Assert.Equal(1, pm.Run("logrotate").ExitCode); // no server: an error
    }

    [Fact]
    public void Json_files_rotate_by_size_keep_the_configured_number_and_follow_a_reload()
    {
        using var pm = Clusters.Bare("logsize", "log_destination = json", "log_directory = 'jsonlogs'", "log_rotation_size = 20kB",
            "log_retained_files = 3", $"worker.c.entry = '{Chatty}'", "worker.c.argument = '300:500'");
        pm.Start();
        string dir = Path.Combine(pm.DataDirectory, "jsonlogs");
        // Retention removes files while the server writes: a file listed a moment ago may be gone when it is read.
        static string[] Lines(string f)
        {
            try
            {
                return File.ReadAllLines(f);
            }
            catch (FileNotFoundException)
            {
                return [];
            }
        }
        pm.WaitUntil(() => Directory.GetFiles(dir).Any(f => Lines(f).Any(l => l.Contains("chatty done", StringComparison.Ordinal))),
            "the worker's last line");
        var files = Directory.GetFiles(dir);
        Assert.Equal(3, files.Length); // 150 kB of lines in files of at most 20 kB: only the newest 3 are left
        Assert.All(files, f => Assert.True(new FileInfo(f).Length <= 20 * 1024, $"{f}: {new FileInfo(f).Length} bytes"));
        Assert.All(files, f => Assert.All(File.ReadAllLines(f), line => Assert.StartsWith("{\"timestamp\":", line)));

        pm.Configure("log_rotation_size", "0");
        pm.Configure("log_retained_files", "30");
        pm.Reload();
        pm.WaitUntil(() => Directory.GetFiles(dir).Any(f => Lines(f).Any(l => l.Contains("log_rotation_size", StringComparison.Ordinal)
                && l.Contains("changed to", StringComparison.Ordinal))), "the reload's line"); // in JSON: quotes escaped
        pm.Stop();
        var after = Directory.GetFiles(dir);
        Assert.Equal(3, after.Length); // no size limit any more: the last file took the rest
        var newest = after.OrderByDescending(File.GetLastWriteTimeUtc).First();
        Assert.Contains("postmaster is shut down", File.ReadAllText(newest));
    }

    [Fact]
    public void Reloads_while_backends_start_end_none_of_them()
    {
        // SIGHUP's default action ends a process: a backend gets it blocked from exec until its handler is in place.
        using var pm = Clusters.Bare("reloadstart", "worker.i.entry = 'idle'", "worker.i.count = 6", "worker.i.restart = on-failure",
            "backend_pool_size = 4");
        pm.Start();
        for (int i = 0; i < 5; i++)
            pm.Reload(); // at once: the workers and the pool members are starting now
        pm.WaitForStatus(s => s.InstancesOf("i") is { Count: 6 } all && all.All(w => w.State == WorkerState.Running), "every worker running");
        for (int i = 0; i < 3; i++)
            pm.Reload();
        pm.Stop();
        var log = pm.ServerLog();
        // "signal 1:" (SIGHUP), not "signal 15" (SIGTERM): fast shutdown may end a pool member that is still starting.
        Assert.False(log.Contains("terminated by signal 1:", StringComparison.Ordinal), log);
        Assert.False(log.Contains("will be restarted", StringComparison.Ordinal), log);
    }

    [Fact]
    public void Reload_forwards_SIGHUP_to_every_backend()
    {
        using var pm = Clusters.Bare("sighup", "worker.w.entry = 'idle'", "worker.w.count = 2", "log_min_messages = debug1");
        pm.Start();
        pm.WaitForBackends(b => b.Count == 2, "two workers");
        Assert.Equal(0, pm.Run("reload").ExitCode);
        pm.WaitForLog("background worker \"w.1\" received SIGHUP");
        pm.WaitForLog("background worker \"w.2\" received SIGHUP");
        pm.Stop();
    }
}
