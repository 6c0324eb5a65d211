namespace Postmaster.Supervision;

/// <summary>The postmaster's private record of one running backend (never read back from shared memory).</summary>
public sealed class BackendProcess
{
    public BackendProcess(int pid, int slot, long generation, WorkerSpec spec, bool pooled, int restarts)
    {
        Pid = pid;
        Slot = slot;
        Generation = generation;
        Spec = spec;
        Pooled = pooled;
        Restarts = restarts;
        StartedAt = DateTime.UtcNow;
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

    /// <summary>The postmaster asked it to stop (terminate, reload removed it, shutdown): do not restart it.</summary>
    public bool StopRequested { get; set; }

    /// <summary>"background worker "name"" or "pool backend", as log lines name it.</summary>
    public string Describe() => Pooled ? "pool backend" : $"background worker \"{Spec.Name}\"";
}
