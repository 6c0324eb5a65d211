namespace Postmaster.Supervision;

/// <summary>The postmaster's private record of one running backend (never read back from shared memory).</summary>
public sealed class BackendProcess
{
    public BackendProcess(int pid, int slot, long generation, WorkerSpec spec, bool pooled, int restarts, DateTime startedAt,
        long startedAtMs)
    {
        Pid = pid;
        Slot = slot;
        Generation = generation;
        Spec = spec;
        Pooled = pooled;
        Restarts = restarts;
        StartedAt = startedAt;
        StartedAtMs = startedAtMs;
    }

    public int Pid { get; }

    public int Slot { get; }

    public long Generation { get; set; }

    /// <summary>What it runs; a pool member gets its real spec when it is handed out.</summary>
    public WorkerSpec Spec { get; set; }

    /// <summary>True while it is an idle pool member.</summary>
    public bool Pooled { get; set; }

    public int Restarts { get; }

    public DateTime StartedAt { get; set; }

    /// <summary>When it started running its current spec (monotonic ms).</summary>
    public long StartedAtMs { get; set; }

    /// <summary>The postmaster asked it to stop (terminate, reload removed it, shutdown): do not restart it.</summary>
    public bool StopRequested { get; set; }

    /// <summary>A pool member's preloaded libraries as they were on disk when it started (path → identity).</summary>
    public IReadOnlyDictionary<string, LibraryIdentity>? Preloaded { get; set; }

    /// <summary>"background worker "name"" or "pool backend", as log lines name it.</summary>
    public string Describe() => Pooled ? "pool backend" : $"background worker \"{Spec.Name}\"";
}

/// <summary>What identifies a library file's contents cheaply: inode, size and modification time.</summary>
public readonly record struct LibraryIdentity(ulong Device, ulong Inode, long Size, long ModifiedTicks)
{
    /// <summary>The identity of the file now; null when it does not exist or cannot be read.</summary>
    public static LibraryIdentity? Of(string path)
    {
        try
        {
            var st = Shmem.Os.FileStat.TryStat(path);
            if (st is not { } s)
                return null;
            return new LibraryIdentity(s.Device, s.Inode, s.Size, File.GetLastWriteTimeUtc(path).Ticks);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Shmem.Errors.OsCallException)
        {
            return null;
        }
    }

    /// <summary>The library path of an entry <c>path.dll:Namespace.Type</c>; null for a built-in name.</summary>
    public static string? PathOf(string entry)
    {
        int colon = entry.LastIndexOf(':');
        if (colon <= 0)
            return null;
        return entry[..colon];
    }
}
