using System.Globalization;
using Postmaster.Testing.Internal;

namespace Postmaster.Testing;

/// <summary>Backends and the postmaster: start and stop workers through the command line, and signal processes that
/// are proven to be this instance's.</summary>
public sealed partial class PostmasterCluster
{
    /// <summary><c>postmaster spawn --worker ENTRY</c>: a dynamic worker (never restarted), running when this returns.
    /// <paramref name="name"/> defaults to the product's (the built-in's name, or the type's).</summary>
    public SpawnedWorker Spawn(string entry, string? argument = null, string? name = null)
    {
        var args = new List<string> { "--worker", entry };
        if (argument is not null)
            args.AddRange(["--argument", argument]);
        if (name is not null)
            args.AddRange(["--name", name]);
        args.AddRange(["--json", "-t", Seconds(Timeout)]);
        var r = Run("spawn", args.ToArray());
        Expect(r, "spawn");
        var answer = InspectionJson.Parse<SpawnAnswer>(r.Stdout, "postmaster spawn --json");
        RecordIfRunning(); // the new backend, proven by status (it may have finished already)
        return new SpawnedWorker(answer.Pid, answer.Slot);
    }

    /// <summary><c>postmaster terminate PID</c>: SIGTERM to that backend, waiting until it has exited; it is not
    /// restarted (a configured worker shows <see cref="WorkerState.Stopped"/>).</summary>
    public void Terminate(int pid) => Expect(Run("terminate", pid.ToString(CultureInfo.InvariantCulture), "-t", Seconds(Timeout)), "terminate");

    /// <summary><c>postmaster terminate NAME</c>: every backend of that worker (all instances of a configured one).</summary>
    public void Terminate(string name) => Expect(Run("terminate", name, "-t", Seconds(Timeout)), "terminate");

    /// <summary><c>postmaster start-worker NAME</c>: starts a stopped, failed or done configured worker again.</summary>
    public void StartWorker(string name) => Expect(Run("start-worker", name, "-t", Seconds(Timeout)), "start-worker");

    /// <summary>SIGKILL to backend <paramref name="pid"/>: a crash (see <see cref="Signal(int, UnixSignal)"/>).</summary>
    public void Kill(int pid) => Signal(pid, UnixSignal.SIGKILL);

    /// <summary>SIGKILL to <paramref name="backend"/>'s process.</summary>
    public void Kill(BackendRow backend) => Signal(backend, UnixSignal.SIGKILL);

    /// <summary><see cref="Signal(int, UnixSignal)"/> to <paramref name="backend"/>'s process.</summary>
    public void Signal(BackendRow backend, UnixSignal signal)
    {
        ArgumentNullException.ThrowIfNull(backend);
        Signal(backend.Pid ?? throw Failure($"backend \"{backend.Name}\" in slot {backend.Slot} has no process yet"), signal);
    }

    /// <summary>
    /// Sends <paramref name="signal"/> to backend <paramref name="pid"/>, only when it is proven to be one of this
    /// instance's: <c>status</c>, read after a pidfd on the pid was opened, lists it as a backend or worker, and its
    /// parent is the postmaster that <c>status</c> names. Anything else (pid 1 or below, a stranger, a backend of
    /// another instance, a process that has gone) fails and is not signalled. The status read for the proof is the
    /// default starting point of <see cref="WaitForFullRestart"/>, <see cref="WaitForReconcile"/> and
    /// <see cref="WaitForRecovery"/>.
    /// </summary>
    public void Signal(int pid, UnixSignal signal)
    {
        ClusterStatus? proof = null;
        string? refused = InstanceIpc.SignalIf(pid, signal, () =>
        {
            proof = Status();
            if (proof.Pid is not int postmaster)
                return "no postmaster runs (or its lock file is damaged)";
            if (!proof.Backends.Any(b => b.Pid == pid) && !proof.Workers.Any(w => w.Pid == pid))
                return $"process {pid} is not a backend of this instance (status lists " +
                       $"{string.Join(", ", proof.Backends.Select(b => b.Pid?.ToString(CultureInfo.InvariantCulture) ?? "-"))})";
            var stat = ProcessIdentity.Stat.Read(pid);
            if (stat?.ParentPid != postmaster)
                return $"process {pid} is not a child of the postmaster (PID {postmaster}; its parent is {stat?.ParentPid.ToString(CultureInfo.InvariantCulture) ?? "unknown"})";
            return null;
        });
        if (refused is not null)
            throw Failure($"not sending {signal} to process {pid}: {refused}");
        _baseline = proof;
    }

    /// <summary>SIGKILL to the postmaster: the supervisor dies and its backends leave by themselves (the next start,
    /// or <c>postmaster cleanup</c>, removes what it left; disposal does too).</summary>
    public void KillPostmaster() => SignalPostmaster(UnixSignal.SIGKILL);

    /// <summary>Sends <paramref name="signal"/> to the postmaster, proven by <c>status</c> (read after a pidfd on it
    /// was opened) to hold this data directory's lock.</summary>
    public void SignalPostmaster(UnixSignal signal)
    {
        int pid = Status().Pid ?? throw Failure("no postmaster runs (or its lock file is damaged)");
        string? refused = InstanceIpc.SignalIf(pid, signal, () =>
            Status().Pid == pid ? null : $"process {pid} no longer holds the lock of \"{DataDirectory}\"");
        if (refused is not null)
            throw Failure($"not sending {signal} to the postmaster: {refused}");
    }
}
