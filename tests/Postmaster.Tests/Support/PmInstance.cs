using System.Diagnostics;
using System.Text.Json;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;
using Xunit;

namespace Postmaster.Tests.Support;

/// <summary>
/// One postmaster data directory for one test, driven through the real CLI executable. Dispose stops whatever still
/// runs (immediate, then SIGKILL), removes any segment the instance left, deletes the directory, and — unless the
/// test already failed — asserts that nothing was left behind (no segment, no process).
/// </summary>
internal sealed class PmInstance : IDisposable
{
    private static int s_counter;
    private readonly HashSet<int> _pids = new();
    private readonly List<(string Type, long Key, long Id)> _segments = new();

    public PmInstance(string label = "t")
    {
        DataDir = Path.Combine(Path.GetTempPath(), $"pmtest-{Environment.ProcessId}-{Interlocked.Increment(ref s_counter)}-{label}");
        if (Directory.Exists(DataDir))
            Directory.Delete(DataDir, recursive: true);
    }

    public string DataDir { get; }

    public string ConfigPath => Path.Combine(DataDir, "postmaster.conf");

    public string LogPath => Path.Combine(DataDir, "log", "postmaster.log");

    public string Log => File.Exists(LogPath) ? ReadShared(LogPath) : "";

    /// <summary>Runs `postmaster ARGS` and waits for it within the global timeout.</summary>
    public static CliResult Cli(params string[] args) => Run(Paths.PostmasterExe, args);

    public static CliResult Run(string exe, IEnumerable<string> args, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        if (env is not null)
            foreach (var (k, v) in env)
                psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(Timeouts.Default))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"postmaster {string.Join(' ', args)} did not finish within {Timeouts.Default}");
        }
        p.WaitForExit();
        return new CliResult(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>`postmaster CMD -D DIR EXTRA...`.</summary>
    public CliResult Do(string command, params string[] extra) =>
        Cli(new[] { command, "-D", DataDir }.Concat(extra).ToArray());

    public CliResult Init() => Do("init");

    /// <summary>init, then drop the default demonstration workers and the pool: only what a test configures runs.</summary>
    public void InitBare(params string[] config)
    {
        var r = Init();
        Assert.True(r.ExitCode == 0, r.ToString());
        File.WriteAllLines(ConfigPath, File.ReadAllLines(ConfigPath).Where(l => !l.StartsWith("worker.demo"))
            .Append("backend_pool_size = 0").Concat(config));
    }

    /// <summary>Detached start with -w; records the pid and segment for cleanup.</summary>
    public CliResult Start(params string[] extra)
    {
        var r = Do("start", new[] { "--detach" }.Concat(extra).ToArray());
        Track();
        return r;
    }

    public CliResult StartOk(params string[] extra)
    {
        var r = Start(extra);
        Assert.True(r.ExitCode == 0, $"start failed: {r}\nlog:\n{Log}");
        return r;
    }

    public CliResult Stop(string mode = "fast") => Do("stop", "-m", mode);

    /// <summary>Appends lines to postmaster.conf (the directory must exist).</summary>
    public void Configure(params string[] lines) => File.AppendAllLines(ConfigPath, lines);

    public LockFileContents? LockFile => DataDirLockFile.Probe(DataDir).Contents;

    public bool Running => DataDirLockFile.Probe(DataDir).Locked;

    public int Pid => LockFile?.Pid ?? throw new InvalidOperationException("no lock file");

    /// <summary>Attaches the running instance's main segment, as its lock file describes it (the test disposes it).</summary>
    public Shmem.Instance.InstanceShmem AttachShmem()
    {
        var d = LockFile?.SharedMemory ?? throw new InvalidOperationException("the lock file names no shared memory");
        return Shmem.Instance.InstanceShmem.Attach(d.Kind, d.Key, d.Id, FileStat.TryStat(DataDir)!.Value);
    }

    public JsonElement StatusJson()
    {
        var r = Do("status", "--json");
        Assert.True(r.ExitCode is 0 or 3, r.ToString());
        return JsonDocument.Parse(r.Stdout).RootElement.Clone();
    }

    /// <summary>The backends `status --json` lists (empty when not running).</summary>
    public List<BackendRow> Backends()
    {
        var r = Do("status", "--json");
        if (r.ExitCode != 0)
            return new List<BackendRow>();
        var rows = JsonDocument.Parse(r.Stdout).RootElement.GetProperty("backends").EnumerateArray()
            .Select(b => new BackendRow(b.GetProperty("pid").ValueKind == JsonValueKind.Null ? 0 : b.GetProperty("pid").GetInt32(), b.GetProperty("slot").GetInt32(),
                b.GetProperty("name").GetString()!, b.GetProperty("entry").GetString()!, b.GetProperty("state").GetString()!,
                b.GetProperty("restarts").GetInt32(), b.GetProperty("dsmSegments").GetInt32()))
            .ToList();
        foreach (var b in rows.Where(b => b.Pid > 0)) // a backend that is still starting has no pid yet (null)
            _pids.Add(b.Pid);
        return rows;
    }

    /// <summary>Waits until the running backends (excluding idle pool members) satisfy <paramref name="condition"/>.</summary>
    public List<BackendRow> WaitForBackends(Func<List<BackendRow>, bool> condition, string what)
    {
        List<BackendRow> rows = new();
        Wait.Until(() => condition(rows = Backends().Where(b => b.State == "running").ToList()), what);
        return rows;
    }

    /// <summary>Waits until the log contains <paramref name="text"/>.</summary>
    public void WaitForLog(string text) => Wait.Until(() => Log.Contains(text), $"the log to contain \"{text}\"; log:\n{Log}");

    /// <summary>Records what the lock file names now, so Dispose can clean up even after a crash.</summary>
    public void Track()
    {
        var c = LockFile;
        if (c is null)
            return;
        _pids.Add(c.Pid);
        if (c.ShmKey is long key && key != 0 && c.ShmId is long id)
            _segments.Add((c.ShmType ?? "sysv", key, id));
    }


    public void Dispose()
    {
        Track();
        if (Running)
            Backends();
        if (Running)
            Stop("immediate");
        // Backends of a killed postmaster leave by themselves (death watch): give them the global timeout, then
        // kill and report whatever is still there.
        var alive = new List<int>();
        try
        {
            Wait.Until(() => (alive = _pids.Where(ProcessControl.IsAlive).ToList()).Count == 0, "the instance's processes to exit");
        }
        catch (TimeoutException)
        {
            foreach (var pid in alive)
                ProcessControl.Signal(pid, Signals.SIGKILL);
        }
        var leftovers = new List<string>();
        foreach (var (type, key, id) in _segments)
        {
            if (Leaks.SegmentExists(type, key, id))
            {
                leftovers.Add($"{type} segment key {key} id {id}");
                Leaks.RemoveSegment(type, key, id);
            }
        }
        leftovers.AddRange(alive.Select(pid => $"process {pid}"));
        if (FileStat.TryStat(DataDir) is { } dirStat)
        {
            foreach (var type in new[] { DsmType.Posix, DsmType.SysV, DsmType.Mmap })
            {
                var config = DsmConfig.For(type, DataDir, dirStat);
                var tagged = DsmOrphanCleanup.FindTagged(config);
                if (tagged.Count == 0)
                    continue;
                leftovers.AddRange(tagged.Select(o => $"dynamic shared memory {o.Implementation} \"{o.Name}\""));
                DsmOrphanCleanup.Run(config, DsmHandle.Invalid);
            }
        }
        if (Directory.Exists(DataDir))
            Directory.Delete(DataDir, recursive: true);
        if (leftovers.Count > 0 && Environment.GetEnvironmentVariable("PMTEST_NO_LEAK_THROW") is null)
            throw new Xunit.Sdk.XunitException("left behind after the test: " + string.Join(", ", leftovers));
    }

    public static string ReadShared(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        return new StreamReader(fs).ReadToEnd();
    }
}
