using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Postmaster.Daemon;
using Postmaster.Shmem.Os;

namespace Postmaster.Cli;

/// <summary>
/// <c>start --detach</c> watching the daemon it spawned: its readiness pipe ("locked OFFSET", "json DIR", "ready") and
/// its stdout/stderr pipe (what it says before it holds the lock). When the daemon fails, reports exactly what THAT
/// daemon said: its pre-lock output from the pipe, and after the lock its own lines of the log file from the offset it
/// reported (lines of other pids, e.g. an earlier failed start, are not its own).
/// </summary>
internal sealed partial class DaemonStartWatch(int pid, SafeFd ready, SafeFd output)
{
    public enum Outcome
    {
        Ready,
        Locked,
        Exited,
        TimedOut,
    }

    private const int MaxOutputBytes = 1 << 20;
    private readonly StringBuilder _readyText = new();
    private readonly MemoryStream _output = new();
    private readonly DateTime _spawnedAt = DateTime.UtcNow;
    private bool _readyEof, _outputEof, _ready;
    private long? _logOffset;
    private string? _jsonDir;
    private int _forwarded;

    [GeneratedRegex(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ UTC \[(?<pid>\d+)\] (?<sev>[A-Z][A-Z0-9]*):  (?<text>.*)$")]
    private static partial Regex LogLine();

    /// <summary>Waits for "ready" (or, without <paramref name="untilReady"/>, for the lock), the daemon's exit (end of
    /// the readiness pipe), or the deadline.</summary>
    public Outcome WaitFor(bool untilReady, DateTime deadline)
    {
        while (true)
        {
            if (_ready)
                return Outcome.Ready;
            if (!untilReady && _logOffset is not null)
                return Outcome.Locked;
            if (_readyEof)
                return Outcome.Exited;
            int ms = (int)Math.Clamp((deadline - DateTime.UtcNow).TotalMilliseconds, 0, int.MaxValue);
            if (ms == 0)
                return Outcome.TimedOut;
            Pump(ms);
        }
    }

    private void Pump(int timeoutMs)
    {
        var fds = _outputEof ? new[] { ready } : new[] { ready, output };
        var readable = Pipes.WaitReadable(fds, timeoutMs);
        if (fds.Length > 1 && readable[1])
            ReadOutput();
        if (!readable[0])
            return;
        var bytes = Pipes.ReadSome(ready);
        if (bytes is null)
        {
            _readyEof = true;
            return;
        }
        _readyText.Append(Encoding.UTF8.GetString(bytes));
        var text = _readyText.ToString();
        int nl;
        while ((nl = text.IndexOf('\n')) >= 0)
        {
            var line = text[..nl];
            text = text[(nl + 1)..];
            if (line.StartsWith("ready", StringComparison.Ordinal))
                _ready = true;
            else if (line.StartsWith(StartupOutput.LockedLine + " ", StringComparison.Ordinal) &&
                     long.TryParse(line[(StartupOutput.LockedLine.Length + 1)..], out long offset))
                _logOffset = offset;
            else if (line.StartsWith(StartupOutput.JsonLine + " ", StringComparison.Ordinal))
                _jsonDir = line[(StartupOutput.JsonLine.Length + 1)..];
        }
        _readyText.Clear().Append(text);
    }

    private void ReadOutput()
    {
        var bytes = Pipes.ReadSome(output);
        if (bytes is null)
            _outputEof = true;
        else if (_output.Length < MaxOutputBytes)
            _output.Write(bytes);
    }

    /// <summary>What the daemon said on its pipe and has not been forwarded yet, as lines.</summary>
    private List<string> TakeOutputLines()
    {
        while (!_outputEof && Pipes.WaitReadable(new[] { output }, 0)[0])
            ReadOutput();
        var all = Encoding.UTF8.GetString(_output.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var lines = all.Skip(_forwarded).ToList();
        _forwarded = all.Length;
        return lines;
    }

    /// <summary>On success: shows what the daemon said before it had its log (warnings), without timestamps.</summary>
    public void ForwardOutput()
    {
        foreach (var line in TakeOutputLines())
            Console.Error.WriteLine(Strip(line));
    }

    /// <summary>The daemon exited before it was ready: reaps it and prints why, in its own words.</summary>
    public void ReportFailure(string logPath, DateTime deadline)
    {
        ChildExit? exit = null;
        while (DateTime.UtcNow < deadline && (exit = ProcessSpawner.TryReap(pid)) is null)
            Thread.Sleep(1);
        while (!_outputEof && DateTime.UtcNow < deadline)
        {
            if (Pipes.WaitReadable(new[] { output }, (int)Math.Max(1, (deadline - DateTime.UtcNow).TotalMilliseconds))[0])
                ReadOutput();
        }
        // "postmaster is shut down" ends every start that got as far as the lock: it says nothing about why.
        var records = TakeOutputLines().Select(ToRecord).Where(r => !(r.Severity == "LOG" && r.Text == "postmaster is shut down")).ToList();
        bool afterLock = _logOffset is not null;
        if (afterLock)
            records.AddRange(_jsonDir is not null ? JsonRecords(_jsonDir) : LogRecords(logPath, _logOffset!.Value));
        string exitText = exit is { } x ? x.Describe("postmaster") : $"postmaster (PID {pid}) stopped its start-up";
        int main = records.FindLastIndex(r => r.Severity is "FATAL" or "PANIC" or "ERROR");
        if (main < 0)
        {
            Report.Error($"could not start server: {exitText}");
            foreach (var r in records)
                Console.Error.WriteLine(r.Format());
            Console.Error.WriteLine($"HINT:  Examine the log output in \"{_jsonDir ?? logPath}\".");
            return;
        }
        int end = main + 1;
        while (end < records.Count && records[end].Severity is "DETAIL" or "HINT")
            end++;
        Console.Error.WriteLine($"postmaster: could not start server: {records[main].Text}");
        foreach (var r in records.Take(main).Concat(records.Skip(end)).Where(r => r.Text.Length > 0))
            Console.Error.WriteLine(r.Format());
        foreach (var r in records.Skip(main + 1).Take(end - main - 1).Where(r => r.Text.Length > 0))
            Console.Error.WriteLine(r.Format());
        if (afterLock)
            Console.Error.WriteLine($"HINT:  Examine the log output in \"{_jsonDir ?? logPath}\".");
    }

    private sealed record Record(string? Severity, string Text)
    {
        public string Format() => Severity is null ? Text : $"{Severity}:  {Text}";
    }

    private static Record ToRecord(string line)
    {
        var m = LogLine().Match(line);
        return m.Success ? new Record(m.Groups["sev"].Value, m.Groups["text"].Value) : new Record(null, line);
    }

    private static string Strip(string line) => ToRecord(line).Format();

    /// <summary>This daemon's FATAL/ERROR/WARNING lines (with their DETAIL and HINT) in the text log, from where it
    /// started writing.</summary>
    private IEnumerable<Record> LogRecords(string path, long offset)
    {
        var list = new List<Record>();
        if (offset < 0)
            return list;
        string text;
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (offset > fs.Length)
                return list;
            fs.Seek(offset, SeekOrigin.Begin);
            var buffer = new byte[Math.Min(MaxOutputBytes, fs.Length - offset)];
            int n = fs.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
            text = Encoding.UTF8.GetString(buffer, 0, n);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return list;
        }
        bool keep = false;
        foreach (var line in text.Split('\n'))
        {
            var m = LogLine().Match(line);
            if (!m.Success)
            {
                // Not a log line (e.g. "postmaster: internal error: ..."): only the lock holder writes here, and
                // before "ready" no backend exists, so it is this daemon's.
                if (line.Length > 0)
                    list.Add(new Record(null, line));
                continue;
            }
            if (m.Groups["pid"].Value != pid.ToString())
                continue;
            string sev = m.Groups["sev"].Value;
            if (sev is "DETAIL" or "HINT")
            {
                if (keep)
                    list.Add(new Record(sev, m.Groups["text"].Value));
                continue;
            }
            keep = sev is not ("LOG" or "DEBUG1" or "DEBUG2" or "DEBUG3" or "DEBUG4" or "DEBUG5" or "INFO" or "NOTICE");
            if (keep)
                list.Add(new Record(sev, m.Groups["text"].Value));
        }
        return list;
    }

    /// <summary>The same from the JSON log (log_destination = json): records of this pid since it was spawned.</summary>
    private IEnumerable<Record> JsonRecords(string dir)
    {
        var list = new List<Record>();
        IEnumerable<FileInfo> files;
        try
        {
            files = new DirectoryInfo(dir).EnumerateFiles("postmaster*.json")
                .Where(f => f.LastWriteTimeUtc >= _spawnedAt.AddSeconds(-1)).OrderBy(f => f.LastWriteTimeUtc).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return list;
        }
        foreach (var file in files)
        {
            string[] lines;
            try
            {
                using var fs = new FileStream(file.FullName, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                if (fs.Length > 64L << 20)
                    fs.Seek(-(64L << 20), SeekOrigin.End);
                lines = new StreamReader(fs).ReadToEnd().Split('\n');
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            foreach (var line in lines)
            {
                if (!line.Contains(pid.ToString(), StringComparison.Ordinal))
                    continue;
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    var root = doc.RootElement;
                    // The instance's JSON schema (docs/logging.md).
                    if (!root.TryGetProperty("pid", out var p) || p.ValueKind != JsonValueKind.Number || p.GetInt32() != pid)
                        continue;
                    string sev = root.TryGetProperty("error_severity", out var s) ? s.GetString() ?? "" : "";
                    if (sev is not ("FATAL" or "PANIC" or "ERROR" or "WARNING"))
                        continue;
                    list.Add(new Record(sev, root.TryGetProperty("message", out var m) ? m.GetString() ?? "" : ""));
                    foreach (var extra in new[] { "detail", "hint" })
                        if (root.TryGetProperty(extra, out var v) && v.GetString() is { Length: > 0 } t)
                            list.Add(new Record(extra.ToUpperInvariant(), t));
                }
                catch (JsonException)
                {
                    // a partial line, or not ours
                }
            }
        }
        return list;
    }
}
