using System.Globalization;
using System.Text;
using Postmaster.Testing.Internal;

namespace Postmaster.Testing;

/// <summary>
/// One postmaster instance for one test, in a temporary data directory of its own, driven through the installed
/// <c>postmaster</c> command line and its documented files (PostgreSQL's <c>PostgreSQL::Test::Cluster</c>).
/// <para><b>Lifecycle.</b> <see cref="Create"/> makes the directory (<c>postmaster init</c> and the options'
/// settings and workers); <see cref="Start"/> starts a detached server and waits until it is ready;
/// <see cref="StartAsync"/> does both. Disposal (<c>using</c>, <c>await using</c>, an xunit fixture) stops whatever
/// still runs (fast, then immediate, then SIGKILL to processes proven to be this instance's), removes what the
/// instance left in shared memory, deletes the directory, and throws a <see cref="ClusterException"/> listing what was
/// left behind, unless the test has already failed (the original failure is never hidden).</para>
/// <para><b>Isolation.</b> Each cluster has its own data directory, and the product derives every IPC name and key
/// from the data directory (its inode), so clusters in parallel tests never meet.</para>
/// <para><b>Waits.</b> Every wait polls a condition (status, log, a process) and is bounded by one timeout per cluster
/// (<see cref="ClusterOptions.Timeout"/>); a wait that fails says what it waited for, the last status and the end of
/// the server log. Nothing sleeps for a fixed time.</para>
/// <para><b>Signals.</b> Only to processes proven to be this instance's: a backend that <c>status</c> lists and whose
/// parent is the postmaster, or the postmaster <c>status</c> proves to hold the lock; each through a pidfd opened
/// before the proof, so a reused pid is never signalled. Never pid 1 or below.</para>
/// Not thread-safe for concurrent commands that change the server (start, stop) on one cluster; inspection and
/// waits may run from several threads.
/// </summary>
public sealed partial class PostmasterCluster : IDisposable, IAsyncDisposable
{
    private const string LockFileName = "postmaster.pid";
    private const int LogTailLines = 30;

    /// <summary>Extra time a command may take beyond its own <c>-t</c> before the harness gives up on it.</summary>
    private static readonly TimeSpan CommandGrace = TimeSpan.FromSeconds(10);

    private readonly string _root;
    private readonly FailureWatch _failures = new();
    private readonly Lock _gate = new();
    private readonly Dictionary<ProcessIdentity, string> _processes = new();
    private readonly HashSet<(string Type, long Key, long Id)> _segments = new();
    private string? _lastStatusJson;
    private ClusterStatus? _baseline;
    private int _disposed;

    private PostmasterCluster(ClusterOptions options, string postmasterPath, string root)
    {
        Options = options;
        PostmasterPath = postmasterPath;
        _root = root;
        DataDirectory = Path.Combine(root, "data");
    }

    /// <summary>The options the cluster was created with.</summary>
    public ClusterOptions Options { get; }

    /// <summary>The <c>postmaster</c> executable every command runs.</summary>
    public string PostmasterPath { get; }

    /// <summary>The data directory (<c>-D</c>): inside the cluster's temporary directory, removed at disposal.</summary>
    public string DataDirectory { get; }

    /// <summary><c>DATADIR/postmaster.conf</c>.</summary>
    public string ConfigPath => Path.Combine(DataDirectory, "postmaster.conf");

    /// <summary>The server log of a detached start without <c>-l</c>: <c>DATADIR/log/postmaster.log</c>.</summary>
    public string LogPath => Path.Combine(DataDirectory, "log", "postmaster.log");

    /// <summary>The bound of every wait (<see cref="ClusterOptions.Timeout"/>).</summary>
    public TimeSpan Timeout => Options.Timeout;

    /// <summary>
    /// Creates a cluster: a temporary directory and, unless <see cref="InitMode.None"/>, an initialised data directory
    /// configured by <paramref name="options"/>. Nothing runs yet. Throws <see cref="ClusterException"/> when the
    /// <c>postmaster</c> binary cannot be found (<see cref="PostmasterBinary.Locate(string?)"/>) or <c>init</c> fails.
    /// </summary>
    public static PostmasterCluster Create(ClusterOptions? options = null)
    {
        options ??= new ClusterOptions();
        if (options.Init == InitMode.None && (options.Settings.Count > 0 || options.Workers.Count > 0))
            throw new ArgumentException("InitMode.None creates no configuration file: settings and workers cannot be written", nameof(options));
        if (options.Timeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(options), options.Timeout, "the timeout must be positive");
        string postmaster = PostmasterBinary.Locate(options.PostmasterPath);
        var cluster = new PostmasterCluster(options, postmaster, CreateRoot(options));
        try
        {
            if (options.Init != InitMode.None)
                cluster.Initialize();
            return cluster;
        }
        catch
        {
            cluster.Dispose();
            throw;
        }
    }

    /// <summary><see cref="Create"/>, then <see cref="Start"/> (the server is ready when this returns). A cluster that
    /// fails to start is disposed before the exception is thrown.</summary>
    public static PostmasterCluster StartNew(ClusterOptions? options = null)
    {
        var cluster = Create(options);
        try
        {
            cluster.Start();
            return cluster;
        }
        catch
        {
            cluster.Dispose();
            throw;
        }
    }

    /// <summary><see cref="StartNew"/> off the caller's thread, for <c>await using</c> and xunit's <c>IAsyncLifetime</c>.</summary>
    public static Task<PostmasterCluster> StartAsync(ClusterOptions? options = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => StartNew(options), cancellationToken);

    // ---- commands ----

    /// <summary>Runs <c>postmaster COMMAND -D DATADIR ARGUMENTS...</c> and returns what it did, whatever its exit code
    /// (a command that does not finish within the timeout and its own <c>-t</c> is killed: a
    /// <see cref="ClusterTimeoutException"/>).</summary>
    public CliResult Run(string command, params string[] arguments) =>
        ProcessRunner.Run(PostmasterPath, new[] { command, "-D", DataDirectory }.Concat(arguments), Env, Timeout + CommandGrace);

    /// <summary>Runs <c>postmaster ARGUMENTS...</c> as given (no <c>-D</c>), e.g. <c>--version</c>.</summary>
    public CliResult RunPostmaster(params string[] arguments) =>
        ProcessRunner.Run(PostmasterPath, arguments, Env, Timeout + CommandGrace);

    /// <summary><c>postmaster start --detach</c> (waiting until ready, within the timeout unless
    /// <paramref name="arguments"/> give a <c>-t</c>) with <paramref name="arguments"/> (e.g. <c>"-c", "name=value"</c>);
    /// whatever the outcome, a server that now runs is recorded for cleanup. Returns the result, failed or not.</summary>
    public CliResult TryStart(params string[] arguments)
    {
        var timeout = arguments.Any(a => a is "-t" or "--timeout") ? [] : new[] { "-t", Seconds(Timeout) };
        var r = Run("start", new[] { "--detach" }.Concat(timeout).Concat(arguments).ToArray());
        RecordIfRunning();
        return r;
    }

    /// <summary><see cref="TryStart"/>, failing with the command's output and the log unless it succeeded.</summary>
    public CliResult Start(params string[] arguments)
    {
        var r = TryStart(arguments);
        if (r.ExitCode != 0)
            throw Failure($"postmaster start failed: {r}");
        return r;
    }

    /// <summary><c>postmaster stop -m MODE</c>, waiting (within the timeout) until the server has exited. Returns the
    /// result, failed or not (exit 1 and "no server running" when none runs).</summary>
    public CliResult TryStop(ShutdownMode mode = ShutdownMode.Fast) => Run("stop", "-m", ModeWord(mode), "-t", Seconds(Timeout));

    /// <summary><see cref="TryStop"/>, failing unless the server stopped.</summary>
    public CliResult Stop(ShutdownMode mode = ShutdownMode.Fast)
    {
        var r = TryStop(mode);
        if (r.ExitCode != 0)
            throw Failure($"postmaster stop -m {ModeWord(mode)} failed: {r}");
        return r;
    }

    /// <summary><c>postmaster restart -m MODE</c> (a new server with the recorded options), then waits until it is
    /// ready.</summary>
    public CliResult Restart(ShutdownMode mode = ShutdownMode.Fast)
    {
        var r = Run("restart", "-m", ModeWord(mode), "-t", Seconds(Timeout));
        RecordIfRunning();
        if (r.ExitCode != 0)
            throw Failure($"postmaster restart failed: {r}");
        WaitUntilReady();
        return r;
    }

    /// <summary><c>postmaster reload</c>: the server re-reads <c>postmaster.conf</c> (this returns once it was
    /// signalled; wait for the log line or status that shows the change).</summary>
    public void Reload() => Expect(Run("reload"), "reload");

    /// <summary>Appends <c>name = 'value'</c> to <c>postmaster.conf</c> (it wins over earlier lines; a running server
    /// reads it at <see cref="Reload"/> or its next start).</summary>
    public void Configure(string name, string value) => File.AppendAllLines(ConfigPath, [ConfigText.Line(name, value)]);

    /// <summary>Appends a configured worker's lines to <c>postmaster.conf</c>.</summary>
    public void Configure(WorkerSpec worker) => File.AppendAllLines(ConfigPath, worker.ConfigLines());

    // ---- inspection ----

    /// <summary><c>postmaster status --json</c>, typed. A stopped server is a status with <see cref="ClusterStatus.Running"/>
    /// false. Records the postmaster, every backend and the main segment it names, for cleanup and leak checks.
    /// Fails when the data directory is missing or unusable (exit 4).</summary>
    public ClusterStatus Status()
    {
        var r = Run("status", "--json");
        if (r.ExitCode is not (0 or 3))
            throw Failure($"postmaster status failed: {r}");
        var status = InspectionJson.Parse<ClusterStatus>(r.Stdout, "postmaster status --json");
        _lastStatusJson = r.Stdout.Trim();
        Record(status);
        return status;
    }

    /// <summary><c>postmaster shmem --json</c>, typed: everything in the running instance's shared memory.</summary>
    public ShmemReport Shmem()
    {
        var r = Run("shmem", "--json");
        if (r.ExitCode != 0)
            throw Failure($"postmaster shmem failed: {r}");
        return InspectionJson.Parse<ShmemReport>(r.Stdout, "postmaster shmem --json");
    }

    /// <summary>Whether a server holds the data directory's lock (<c>status</c> exit 0).</summary>
    public bool IsRunning => Run("status").ExitCode == 0;

    /// <summary>The running postmaster's pid, as <c>status</c> proves it.</summary>
    public int PostmasterPid => Status().Pid ?? throw Failure("no postmaster runs (or its lock file is damaged)");

    /// <summary>The whole server log (<see cref="LogPath"/>) as it is now; empty when there is none yet.</summary>
    public string ServerLog()
    {
        if (!File.Exists(LogPath))
            return "";
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return new StreamReader(stream, Encoding.UTF8).ReadToEnd();
        }
        catch (FileNotFoundException)
        {
            return "";
        }
    }

    /// <summary>The server log's lines.</summary>
    public IReadOnlyList<string> ServerLogLines() => ServerLog().Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The last <paramref name="lines"/> lines of the server log, for messages.</summary>
    public string LogTail(int lines = LogTailLines)
    {
        var all = ServerLogLines();
        return string.Join('\n', all.Skip(Math.Max(0, all.Count - lines)));
    }

    // ---- internals ----

    private IEnumerable<KeyValuePair<string, string>> Env => Options.Environment;

    private static string Seconds(TimeSpan t) => ((int)Math.Ceiling(t.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    private static string ModeWord(ShutdownMode mode) => mode switch
    {
        ShutdownMode.Smart => "smart",
        ShutdownMode.Immediate => "immediate",
        _ => "fast",
    };

    private void Expect(CliResult r, string what)
    {
        if (r.ExitCode != 0)
            throw Failure($"postmaster {what} failed: {r}");
    }

    /// <summary>A failure of this cluster, with the last status and the end of the server log.</summary>
    private ClusterException Failure(string message) => new(message + Context());

    private string Context() =>
        $"\n--- last status ---\n{_lastStatusJson ?? "(none read)"}\n--- server log, last {LogTailLines} lines ({LogPath}) ---\n{LogTail()}";

    private void Initialize()
    {
        Expect(Run("init"), "init");
        var lines = File.ReadAllLines(ConfigPath).AsEnumerable();
        if (Options.Init == InitMode.Bare)
            lines = lines.Where(l => !l.StartsWith("worker.demo.", StringComparison.Ordinal)).Append("backend_pool_size = 0");
        lines = lines.Concat(Options.Settings.Select(s => ConfigText.Line(s.Key, s.Value)))
            .Concat(Options.Workers.SelectMany(w => w.ConfigLines()));
        File.WriteAllLines(ConfigPath, lines.ToList());
    }

    private void RecordIfRunning()
    {
        if (Directory.Exists(DataDirectory) && File.Exists(Path.Combine(DataDirectory, LockFileName)))
            Status();
    }

    /// <summary>Remembers what <paramref name="s"/> proves to be this instance's: processes by identity (pid and
    /// start time): the postmaster, and each backend listed whose parent it is; the main segment by type, key and id.</summary>
    private void Record(ClusterStatus s)
    {
        if (!s.Running || s.Pid is not int pm)
            return;
        lock (_gate)
        {
            RecordProcess(pm, "postmaster");
            foreach (var (pid, name) in s.Backends.Select(b => (b.Pid, b.Name)).Concat(s.Workers.Select(w => (w.Pid, w.Name))))
                if (pid is int p && ProcessIdentity.Stat.Read(p)?.ParentPid == pm)
                    RecordProcess(p, $"backend \"{name}\"");
            if (s.SharedMemory is { Type: { } type, Key: long key and not 0, Id: long id })
                _segments.Add((type, key, id));
        }
    }

    private void RecordProcess(int pid, string what)
    {
        if (pid > 1 && ProcessIdentity.Of(pid) is { } identity)
            _processes.TryAdd(identity, what);
    }

    private static string CreateRoot(ClusterOptions options)
    {
        var label = new string(options.Name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '-').Take(40).ToArray());
        string prefix = $"pm-{label}-";
        if (options.TempDirectory is null)
            return Directory.CreateTempSubdirectory(prefix).FullName;
        string root = Path.Combine(Path.GetFullPath(options.TempDirectory), prefix + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return root;
    }
}
