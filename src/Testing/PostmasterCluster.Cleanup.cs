using Postmaster.Testing.Internal;

namespace Postmaster.Testing;

/// <summary>Leak checks and disposal: what the instance left behind is found (its main segments, its DSM objects by
/// the instance's naming, its processes by identity), reported, and removed.</summary>
public sealed partial class PostmasterCluster
{
    /// <summary>
    /// What this instance has left behind now, one line each: a server that still runs, a process the harness saw
    /// as the instance's that is still alive, a main segment it saw that still exists, a dynamic shared memory object
    /// tagged with the instance (any implementation). Empty when nothing is left. Meant for after <see cref="Stop"/>
    /// (while the server runs, its segments exist by right).
    /// </summary>
    public IReadOnlyList<string> FindLeaks()
    {
        var found = new List<string>();
        if (Directory.Exists(DataDirectory) && IsRunning)
            found.Add("the server is still running");
        found.AddRange(LiveProcesses().Select(p => $"process {p.Identity.Pid} ({p.What}) is still running"));
        found.AddRange(LiveSegments().Select(s => $"{s.Type} main shared memory segment (key {s.Key}, ID {s.Id})"));
        found.AddRange(InstanceIpc.DsmObjects(DataDirectory));
        return found;
    }

    /// <summary>Fails, listing <see cref="FindLeaks"/>, unless nothing is left behind.</summary>
    public void AssertNothingLeaked()
    {
        var leaks = FindLeaks();
        if (leaks.Count > 0)
            throw Failure($"left behind by the cluster in \"{DataDirectory}\":\n  " + string.Join("\n  ", leaks));
    }

    /// <summary>
    /// Stops whatever still runs (fast, then immediate; processes of the instance still alive after the timeout get
    /// SIGKILL, each proven by its identity), removes what the instance left (<c>postmaster cleanup</c>, then
    /// whatever remains of its segments and DSM objects), and deletes the temporary directory. Then, unless the test
    /// has already failed, throws a <see cref="ClusterException"/> listing what had been left behind or could not be
    /// cleaned; a failed test keeps its own failure. Runs once; later calls do nothing.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        bool quiet = _failures.FailureSeen; // first: an exception being dispatched is visible only now
        var left = new List<string>();
        try
        {
            StopAndReap(left);
            left.AddRange(LiveSegments().Select(s => $"{s.Type} main shared memory segment (key {s.Key}, ID {s.Id})"));
            left.AddRange(InstanceIpc.DsmObjects(DataDirectory));
            if (left.Count > 0)
                RemoveLeftovers();
        }
        catch (Exception e) when (e is ClusterException or IOException or UnauthorizedAccessException)
        {
            left.Add($"cleanup failed: {e.Message}");
        }
        finally
        {
            if (DeleteRoot() is { } problem)
                left.Add(problem);
            _failures.Dispose();
        }
        if (left.Count > 0 && !quiet)
            throw new ClusterException($"left behind by the cluster in \"{DataDirectory}\" (now removed):\n  " + string.Join("\n  ", left));
    }

    /// <summary><see cref="Dispose"/> off the caller's thread (stopping a server takes a moment).</summary>
    public ValueTask DisposeAsync() => new(Task.Run(Dispose));

    private void StopAndReap(List<string> left)
    {
        // status exit 0: a server holds the lock (whatever its configuration file says; 3 and 4 are "not running")
        if (File.Exists(Path.Combine(DataDirectory, LockFileName)) && Run("status", "--json") is { ExitCode: 0 } running)
        {
            Record(InspectionJson.Parse<ClusterStatus>(running.Stdout, "postmaster status --json"));
            if (TryStop(ShutdownMode.Fast).ExitCode != 0 && IsRunning)
                TryStop(ShutdownMode.Immediate);
        }
        // Backends of a killed postmaster leave by themselves (its death is noticed at once): give them the timeout.
        try
        {
            Wait.Until(() => LiveProcesses().Count == 0, "the instance's processes to exit", Timeout, () => "");
        }
        catch (ClusterTimeoutException)
        {
            foreach (var (identity, what) in LiveProcesses())
            {
                string? notSent = InstanceIpc.SignalIf(identity.Pid, UnixSignal.SIGKILL,
                    () => identity.IsAlive ? null : "it has exited");
                left.Add($"process {identity.Pid} ({what}) was still running" + (notSent is null ? "; killed" : ""));
            }
            Wait.Until(() => LiveProcesses().Count == 0, "the killed processes to exit", Timeout, () => "");
        }
    }

    /// <summary>The product's own cleanup first (it knows every object's owner), then what the harness saw.</summary>
    private void RemoveLeftovers()
    {
        if (File.Exists(ConfigPath))
            Run("cleanup");
        foreach (var (type, key, id) in LiveSegments())
            InstanceIpc.RemoveMainSegment(type, key, id);
        InstanceIpc.RemoveDsmObjects(DataDirectory);
    }

    private List<(ProcessIdentity Identity, string What)> LiveProcesses()
    {
        lock (_gate)
            return _processes.Where(p => p.Key.IsAlive).Select(p => (p.Key, p.Value)).ToList();
    }

    private List<(string Type, long Key, long Id)> LiveSegments()
    {
        List<(string Type, long Key, long Id)> seen;
        lock (_gate)
            seen = _segments.ToList();
        return seen.Where(s => InstanceIpc.MainSegmentExists(s.Type, s.Key, s.Id)).ToList();
    }

    /// <summary>Deletes the temporary directory, also when a test left parts of it without permissions; null when
    /// done, else why not.</summary>
    private string? DeleteRoot()
    {
        try
        {
            if (!Directory.Exists(_root))
                return null;
            foreach (var dir in Directory.EnumerateDirectories(_root, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true }).Prepend(_root))
                if (!File.GetAttributes(dir).HasFlag(FileAttributes.ReparsePoint))
                    File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Directory.Delete(_root, recursive: true);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"could not remove \"{_root}\": {e.Message}";
        }
    }
}
