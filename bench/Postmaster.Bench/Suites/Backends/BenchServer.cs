using System.Diagnostics;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;

namespace Postmaster.Bench.Suites.Backends;

/// <summary>
/// One postmaster started for a benchmark: a fresh data directory whose postmaster.conf holds exactly the settings
/// given, started through the real CLI (<c>start --detach</c>), its shared memory attached read-mostly by the bench
/// (re-attached when a crash restart replaced the segment), and a request client that does what <c>postmaster
/// spawn</c> does without starting a process. Dispose stops it (fast, then immediate, then SIGKILL as a last resort)
/// and deletes the directory.
/// </summary>
internal sealed class BenchServer : IDisposable
{
    public static readonly TimeSpan WaitLimit = TimeSpan.FromSeconds(120);

    private InstanceShmem? _shmem;
    private long _shmemId;

    private BenchServer(string dir)
    {
        Dir = dir;
    }

    public string Dir { get; }

    public int Pid { get; private set; }

    public string LogPath => Path.Combine(Dir, "log", "postmaster.log");

    /// <summary>The stamp worker's entry (tests/TestChild, built into out/testchild by run.sh bench).</summary>
    public static string StampEntry => Path.Combine(BenchPaths.Out, "testchild", "TestChild.dll") + ":Postmaster.TestChild.Workers.StampWorker";

    /// <summary>The same as an async worker (IAsyncBackgroundWorker).</summary>
    public static string AsyncStampEntry => Path.Combine(BenchPaths.Out, "testchild", "TestChild.dll") + ":Postmaster.TestChild.Workers.AsyncStampWorker";

    public static string Quote(string text) => $"'{text.Replace("'", "''", StringComparison.Ordinal)}'";

    /// <param name="environment">Extra environment for the CLI, which the daemon and so every backend inherits.</param>
    public static BenchServer Start(string label, IReadOnlyDictionary<string, string> settings,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"pmbench-{Environment.ProcessId}-{label}");
        if (Directory.Exists(dir))
            Directory.Delete(dir, recursive: true);
        BenchProcess.RunCli("init", "-D", dir);
        var server = new BenchServer(dir);
        LeakCheck.DevShmPrefixes.Add(DsmConfig.For(DsmType.Posix, dir, FileStat.TryStat(dir)!.Value).Tag.PosixPrefix());
        try
        {
            server.WriteConfig(settings);
            BenchProcess.Run(BenchPaths.Postmaster, environment, "start", "-D", dir, "--detach");
            server.Pid = server.ReadLockFile()?.Pid ?? throw new InvalidOperationException($"no lock file in {dir} after start");
            LeakCheck.PostmasterPids.Add(server.Pid);
            return server;
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    /// <summary>Replaces postmaster.conf with exactly <paramref name="settings"/> (string values already quoted).</summary>
    public void WriteConfig(IReadOnlyDictionary<string, string> settings) =>
        File.WriteAllLines(Path.Combine(Dir, "postmaster.conf"), settings.Select(kv => $"{kv.Key} = {kv.Value}"));

    /// <summary>Rewrites postmaster.conf and sends SIGHUP; returns the timestamp taken just before the signal.</summary>
    public long Reload(IReadOnlyDictionary<string, string> settings)
    {
        WriteConfig(settings);
        long t = Stopwatch.GetTimestamp();
        ProcessControl.Signal(Pid, Signals.SIGHUP);
        return t;
    }

    /// <summary>postmaster.pid as it is now; null while it is being rewritten or gone.</summary>
    public LockFileContents? ReadLockFile()
    {
        try
        {
            return LockFileContents.Parse(File.ReadAllText(Path.Combine(Dir, DataDirLockFile.FileName)));
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The instance's current main segment; re-attached when the lock file names a new one (after a crash
    /// restart), in which case the old attachment is dropped so that the removed segment can go away.</summary>
    public InstanceShmem Shmem
    {
        get
        {
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                var c = ReadLockFile();
                if (c is { ShmKey: long key, ShmId: long id } && c.TrimmedStatus == "ready")
                {
                    if (_shmem is not null && id == _shmemId)
                        return _shmem;
                    _shmem?.Dispose();
                    _shmem = null;
                    try
                    {
                        _shmem = InstanceShmem.Attach(c.ShmType == "posix" ? SegmentKind.Posix : SegmentKind.SysV, key, id,
                            FileStat.TryStat(Dir) ?? throw new InvalidOperationException($"{Dir} vanished"));
                        _shmemId = id;
                        return _shmem;
                    }
                    catch (ShmemException) when (deadline.Elapsed < WaitLimit)
                    {
                        // replaced between reading the lock file and attaching: read it again
                    }
                }
                if (deadline.Elapsed > WaitLimit)
                    throw new TimeoutException($"the server in {Dir} did not become ready");
                Thread.Sleep(1);
            }
        }
    }

    /// <summary>Every slot in use (assigned, active or starting) in the current segment.</summary>
    public List<BackendSlotInfo> Backends()
    {
        var shmem = Shmem;
        var list = new List<BackendSlotInfo>();
        for (int i = 0; i < shmem.Slots.Count; i++)
        {
            var info = shmem.Slots.Read(i);
            if (info.State != BackendSlotState.Unused)
                list.Add(info);
        }
        return list;
    }

    /// <summary>Polls the slots every millisecond until <paramref name="done"/> holds; returns them.</summary>
    public List<BackendSlotInfo> WaitForBackends(Func<List<BackendSlotInfo>, bool> done, string what)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var list = Backends();
            if (done(list))
                return list;
            if (sw.Elapsed > WaitLimit)
                throw new TimeoutException($"waited {WaitLimit.TotalSeconds:0} s for {what}; backends: " +
                                           string.Join(", ", list.Select(b => $"{b.Name}/{b.Pid}/{b.State}")));
            Thread.Sleep(1);
        }
    }

    /// <summary>Waits until exactly <paramref name="running"/> workers run (Active, not parked) and
    /// <paramref name="parked"/> pool members are parked, nothing else.</summary>
    public List<BackendSlotInfo> WaitForSteadyState(int running, int parked) =>
        WaitForBackends(list => list.Count == running + parked && list.All(b => b.State == BackendSlotState.Active) &&
                                list.Count(b => b.Pooled) == parked, $"{running} running and {parked} parked backends");

    /// <summary>What <c>postmaster spawn</c> / <c>terminate</c> do, minus the process start: post the request in
    /// shared memory, ring the postmaster's doorbell, wait on the entry's futex for the answer.</summary>
    public WorkerRequestResult Request(WorkerRequestKind kind, string name, string entry, string argument, string target = "")
    {
        var shmem = Shmem;
        int index = shmem.Requests.Post(kind, name, entry, argument, target, Pid)
                    ?? throw new InvalidOperationException("the postmaster's request queue is full");
        var result = shmem.Requests.WaitOrWithdraw(index, WaitLimit);
        if (result is null)
        {
            throw new TimeoutException($"the postmaster (PID {Pid}) did not answer a {kind} request");
        }
        return result.Value;
    }

    public void Dispose()
    {
        _shmem?.Dispose();
        _shmem = null;
        if (Pid > 0 && ProcessControl.IsAlive(Pid))
        {
            if (BenchProcess.TryRun(BenchPaths.Postmaster, null, "stop", "-D", Dir, "-m", "fast", "-t", "30") != 0 &&
                BenchProcess.TryRun(BenchPaths.Postmaster, null, "stop", "-D", Dir, "-m", "immediate", "-t", "30") != 0)
            {
                ProcessControl.Signal(Pid, Signals.SIGKILL); // last resort; its backends follow through the death pipe
                Console.Error.WriteLine($"warning: postmaster {Pid} in {Dir} would not stop; killed");
            }
        }
        if (Directory.Exists(Dir))
            Directory.Delete(Dir, recursive: true);
    }
}
