using Postmaster.Logging;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Os;

namespace Postmaster.Supervision;

/// <summary>How a reaped backend ended, as the supervisor classifies it (PostgreSQL's bgworker rules).</summary>
public enum BackendEnd
{
    /// <summary>exit 0 and its slot released: the work is done.</summary>
    Done,

    /// <summary>exit 1 and its slot released: restart per policy.</summary>
    Failed,

    /// <summary>Any other status, a signal, or exit 0/1 with the slot still Active (the dead-man switch).</summary>
    Crashed,

    /// <summary>It could not attach because shared memory failed its validation (exit
    /// <see cref="BackendExitCodes.ShmemInvalid"/>), or its slot could not be read: a full restart.</summary>
    ShmemInvalid,
}

/// <summary>A reaped child, classified. <paramref name="Problem"/> says what was wrong with shared memory for
/// <see cref="BackendEnd.ShmemInvalid"/>.</summary>
internal sealed record ReapedChild(BackendProcess Process, ChildExit Exit, BackendEnd End, string? Problem);

/// <summary>
/// The postmaster's private table of its children (PostgreSQL's pmchild.c): which pid runs in which slot with which
/// generation, started and reaped by pid only, never read back from shared memory. Starting a backend reserves a slot
/// in the shared slot array first; reaping classifies the exit; <see cref="ReleaseSlot"/> frees it afterwards (crash
/// recovery may need it untouched until it has decided). Runs on the supervisor loop's thread only.
/// </summary>
internal sealed class ChildTable
{
    private const int ECHILD = 10;
    private readonly ServerLog _log;
    private readonly IProcessOps _ops;
    private readonly Func<InstanceShmem> _shmem;
    private readonly Dictionary<int, BackendProcess> _byPid = new();
    private readonly IClock _clock;
    private bool[] _slotInUse;
    private long _generation;

    public ChildTable(ServerLog log, IProcessOps ops, IClock clock, Func<InstanceShmem> shmem)
    {
        _log = log;
        _ops = ops;
        _clock = clock;
        _shmem = shmem;
        _slotInUse = new bool[shmem().Slots.Count];
    }

    /// <summary>Builds the parameter block of a new backend (slot, generation, spec, pooled, preload).</summary>
    public Func<int, long, WorkerSpec, bool, IReadOnlyList<string>, BackendParameters>? Parameters { get; set; }

    public int Count => _byPid.Count;

    public IEnumerable<BackendProcess> All => _byPid.Values;

    public int FreeSlots => _slotInUse.Count(used => !used);

    public long NextGeneration() => ++_generation;

    /// <summary>Starts a process for <paramref name="spec"/> in a free slot; null with the reason when it cannot
    /// (no free slot, the spec does not fit a slot, the process could not be started).</summary>
    public BackendProcess? Launch(WorkerSpec spec, bool pooled, int restarts, IReadOnlyList<string> preload, out string? error)
    {
        int slot = Array.IndexOf(_slotInUse, false);
        if (slot < 0)
        {
            error = $"too many backends: all {_slotInUse.Length} slots are in use (max_backends = {_slotInUse.Length})";
            return null;
        }
        if (BackendSlotArray.Validate(spec.Name, spec.Entry, spec.Argument) is { } invalid)
        {
            error = invalid;
            return null;
        }
        long gen = NextGeneration();
        var slots = _shmem().Slots;
        slots.Assign(slot, gen, spec.Name, spec.Entry, spec.Argument, pooled, restarts);
        int pid;
        try
        {
            var parameters = (Parameters ?? throw new InvalidOperationException("ChildTable.Parameters is not set"))(
                slot, gen, spec, pooled, preload);
            pid = _ops.Launch(parameters, spec.Icu);
        }
        catch (ShmemException e) when (e is not ShmemCorruptException)
        {
            slots.Free(slot);
            error = $"could not start backend process: {e.Message}";
            return null;
        }
        if (pid <= 1)
        {
            slots.Free(slot);
            error = $"could not start backend process: the process start returned PID {pid}";
            return null;
        }
        slots.RecordPid(slot, gen, pid);
        _slotInUse[slot] = true;
        var p = new BackendProcess(pid, slot, gen, spec, pooled, restarts, _clock.UtcNow, _clock.NowMs);
        _byPid[pid] = p;
        _log.Debug1($"started {p.Describe()} (PID {pid}, slot {slot})");
        error = null;
        return p;
    }

    /// <summary>Every child that has exited (SIGCHLD, or the periodic backstop), classified, removed from the table;
    /// its slot stays reserved until <see cref="ReleaseSlot"/>.</summary>
    public List<ReapedChild> Reap()
    {
        List<ReapedChild>? reaped = null;
        foreach (int pid in _byPid.Keys.ToList())
        {
            ChildExit? exit;
            try
            {
                exit = _ops.TryReap(pid);
            }
            catch (OsCallException e) when (e.Errno == ECHILD)
            {
                // Not our child any more: something else reaped it and its exit status is gone. It is treated as a
                // crash (what it left cannot be known) and never signalled again.
                _log.Log($"exit status of backend process {pid} was lost: {e.Message}");
                exit = new ChildExit(pid, null, null, false, -1);
            }
            catch (OsCallException e)
            {
                _log.Warning($"could not wait for backend process {pid}: {e.Message}");
                continue;
            }
            if (exit is not { } x)
                continue;
            var p = _byPid[pid];
            _byPid.Remove(pid);
            (reaped ??= new()).Add(Classify(p, x));
        }
        return reaped ?? new List<ReapedChild>();
    }

    private ReapedChild Classify(BackendProcess p, ChildExit exit)
    {
        if (exit.ExitCode == BackendExitCodes.ShmemInvalid)
            return new ReapedChild(p, exit, BackendEnd.ShmemInvalid, $"{p.Describe()} (PID {p.Pid}) found shared memory invalid");
        BackendSlotState state;
        try
        {
            state = _shmem().Slots.StateOf(p.Slot);
        }
        catch (ShmemException e)
        {
            return new ReapedChild(p, exit, BackendEnd.ShmemInvalid, $"backend slot {p.Slot} cannot be read: {e.Message}");
        }
        if (state is not (BackendSlotState.Assigned or BackendSlotState.Active))
            return new ReapedChild(p, exit, BackendEnd.ShmemInvalid,
                $"backend slot {p.Slot} of {p.Describe()} (PID {p.Pid}) holds state {(int)state}, which no process writes");
        bool stillActive = state == BackendSlotState.Active;
        var end = exit.ExitCode switch
        {
            0 when !stillActive => BackendEnd.Done,
            1 when !stillActive => BackendEnd.Failed,
            _ => BackendEnd.Crashed,
        };
        return new ReapedChild(p, exit, end, null);
    }

    /// <summary>Frees a reaped backend's slot and its lock-owner record. False when shared memory refused (corrupt).</summary>
    public bool ReleaseSlot(int slot)
    {
        _slotInUse[slot] = false;
        try
        {
            var shmem = _shmem();
            shmem.Owners.ResetSlot(slot);
            shmem.Slots.Free(slot);
            return true;
        }
        catch (ShmemException e)
        {
            _log.Log($"could not free backend slot {slot}: {e.Message}");
            return false;
        }
    }

    /// <summary>Asks one backend to stop; it will not be restarted.</summary>
    public void Stop(BackendProcess p, int signal)
    {
        p.StopRequested = true;
        if (_byPid.TryGetValue(p.Pid, out var known) && known == p) // never a reaped (possibly reused) pid
            Signal(p.Pid, signal);
    }

    private void Signal(int pid, int signal)
    {
        try
        {
            _ops.Signal(pid, signal);
        }
        catch (ShmemException e)
        {
            _log.Warning($"could not send signal {signal} to backend process {pid}: {e.Message}");
        }
    }

    public void StopAll(int signal, Func<BackendProcess, bool>? which = null)
    {
        foreach (var p in _byPid.Values.ToList())
            if (which is null || which(p))
                Stop(p, signal);
    }

    /// <summary>Forwards a signal without marking anyone as stopping (SIGHUP on reload).</summary>
    public void Forward(int signal)
    {
        foreach (var p in _byPid.Values)
            Signal(p.Pid, signal);
    }

    public void KillAll()
    {
        foreach (var p in _byPid.Values)
            Signal(p.Pid, Signals.SIGKILL);
    }

    /// <summary>After a full reinitialisation: no child exists, a fresh slot array.</summary>
    public void Reset()
    {
        if (_byPid.Count != 0)
            throw new InvalidOperationException("internal error: shared memory was rebuilt while backends are alive");
        _slotInUse = new bool[_shmem().Slots.Count];
    }
}
