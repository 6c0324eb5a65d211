using System.Runtime.InteropServices;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;
using Postmaster.Workers;

namespace Postmaster.Backend;

/// <summary>
/// One backend's life (PostgreSQL's SubPostmasterMain for the EXEC_BACKEND case): install signal handling, watch
/// for the postmaster's death, attach the main segment and validate it against the data directory, claim the slot
/// (Assigned → Active: the dead-man switch), wait in the pool if pooled, resolve and run the worker, then run the
/// ordered exit path: before-shmem callbacks, DSM detach-all, on-shmem callbacks (lock release, slot → Assigned),
/// on-proc callbacks. SIGQUIT ends the process at once with exit 2 and runs nothing, as in PostgreSQL.
/// </summary>
internal sealed class BackendHost
{
    public const int ExitDone = 0;
    public const int ExitFailure = 1;
    public const int ExitQuit = 2;

    private readonly BackendParameters _p;
    private readonly BackendLog _log;
    private readonly StopRequest _stop = new();
    private readonly ExitCallbacks _exit = new();
    private readonly List<PosixSignalRegistration> _signals = new();
    private readonly object _levelGate = new();
    private InstanceShmem? _attached; // while attached: where the current log_min_messages is published
    private string _name;
    private int _orphaned;

    public BackendHost(BackendParameters parameters, BackendLog log)
    {
        _p = parameters;
        _log = log;
        _name = parameters.WorkerName;
    }

    public int Run()
    {
        InstallSignals();
        if (!PostmasterDeathWatch.Arm(_p.PostmasterPid))
            OnPostmasterDeath();
        if (!CheckDataDirectory(out var dir))
            return ExitFailure;
        InstanceShmem shmem;
        try
        {
            shmem = Attach(dir);
        }
        catch (ShmemCorruptException e)
        {
            return ShmemInvalid($"could not attach to shared memory (key {_p.SegmentKey}, ID {_p.SegmentId}) of data directory \"{_p.DataDir}\"", e);
        }
        catch (ShmemException e)
        {
            _log.Write(BackendLog.Fatal, e.Message, e.Detail, e.Hint);
            return ExitFailure;
        }
        int code = ExitFailure;
        LazyDsmSession? dsm = null;
        lock (_levelGate)
            _attached = shmem;
        FollowLogLevel(); // a pool member started before a reload must not log by the old level
        try
        {
            // The slot and the owner record are what the postmaster prepared for this process: anything else there
            // means the memory is not what it wrote (the supervisor frees a slot only after reaping its process).
            if (!shmem.Slots.MarkActive(_p.Slot, _p.Generation, Environment.ProcessId))
            {
                var info = shmem.Slots.Read(_p.Slot);
                return ShmemInvalid($"backend slot {_p.Slot} is not assigned to this process",
                    new ShmemCorruptException($"{BackendSlotArray.StructureName}: slot {_p.Slot} holds state {(int)info.State} generation {info.Generation}, " +
                                              $"expected state {(int)BackendSlotState.Assigned} generation {_p.Generation}"));
            }
            bool locksReleased = true;
            // An acquire that could not be stopped leaves the slot Active: the supervisor then treats the exit as a crash.
            _exit.OnShmemExit("release backend slot", () =>
            {
                if (locksReleased)
                    shmem.Slots.MarkInactive(_p.Slot);
            });
            LockOwner owner;
            try
            {
                owner = shmem.Owners.CreateOwner(_p.Slot, shmem.Tranches);
            }
            catch (ShmemException e)
            {
                return ShmemInvalid($"could not take lock owner slot {_p.Slot}", e);
            }
            // Attached: the start latency (the postmaster's assignment, just before posix_spawn, until now) for the metrics.
            InstanceCounters.Open(shmem.Main.Index, out _)?.RecordBackendStart(InstanceCounters.NanosSince(shmem.Slots.AssignedAt(_p.Slot)));
            _exit.OnShmemExit("release locks", () =>
            {
                locksReleased = owner.ReleaseAll(
                    (name, mode) => _log.Write(BackendLog.Warning, $"lock {name} was still held ({mode}) when the backend exited; released"),
                    ExitAcquireWait);
                if (!locksReleased)
                    _log.Write(BackendLog.Warning, "a lock acquire on another thread did not stop at exit",
                        "The backend's slot stays in use, so the postmaster treats this exit as a crash.");
            });
            dsm = new LazyDsmSession(() => new DsmSession(shmem, owner, DsmConfigFor(_p), new BackendShmemLog(_log)));
            code = RunWorker(shmem, owner, dsm);
        }
        finally
        {
            _exit.RunAll(() => dsm?.Created?.DetachAll(), ExitCallbackFailed);
            lock (_levelGate)
                _attached = null; // the SIGHUP handler reads the header: not once it is unmapped
            shmem.Dispose();
            _log.Dispose();
        }
        return code;
    }

    /// <summary>A WARNING with the stack trace: the exit path goes on with the next callback.</summary>
    private void ExitCallbackFailed(string what, Exception e)
    {
        e = ExceptionReport.Unwrap(e);
        _log.Write(BackendLog.Warning, $"exit callback \"{what}\" failed: {ExceptionReport.Summary(e)}", context: ExceptionReport.Trace(e));
    }

    /// <summary>How long the exit path waits for lock acquires still sleeping on other threads to give up.</summary>
    private static readonly TimeSpan ExitAcquireWait = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The one FATAL line of a backend that found shared memory invalid, and its exit code
    /// (<see cref="BackendExitCodes.ShmemInvalid"/>: the supervisor does a full crash restart, never a plain restart).
    /// The line says what could not be done and what is invalid, e.g. <c>shared memory is invalid: could not attach to
    /// shared memory (key 1234, ID 5) of data directory "/d": backend slot array: wrong magic number 0x00000000
    /// (expected 0x504D4253)</c>.
    /// </summary>
    private int ShmemInvalid(string what, ShmemException e)
    {
        string problem = e.Detail is null ? e.Message : $"{e.Message}: {e.Detail}";
        _log.Write(BackendLog.Fatal, $"shared memory is invalid: {what}: {problem}");
        return BackendExitCodes.ShmemInvalid;
    }

    /// <summary>The data directory, checked to be the one the postmaster started with; false (FATAL logged) if not.
    /// (An out parameter, not a nullable FileStat: Nullable&lt;T&gt;.Value over a struct of another assembly is not
    /// precompiled by ReadyToRun and would load the JIT in every backend.)</summary>
    private bool CheckDataDirectory(out FileStat dir)
    {
        dir = default;
        try
        {
            if (FileStat.TryStat(_p.DataDir) is not { } d)
            {
                _log.Write(BackendLog.Fatal, $"data directory \"{_p.DataDir}\" does not exist");
                return false;
            }
            dir = d;
        }
        catch (OsCallException e)
        {
            _log.Write(BackendLog.Fatal, e.Message);
            return false;
        }
        if (dir.Device != _p.DataDirDevice || dir.Inode != _p.DataDirInode)
        {
            _log.Write(BackendLog.Fatal, $"data directory \"{_p.DataDir}\" is not the one the postmaster started with",
                $"postmaster: device {_p.DataDirDevice} inode {_p.DataDirInode}; now: device {dir.Device} inode {dir.Inode}");
            return false;
        }
        return true;
    }

    /// <summary>Attaches the main segment and validates it and every module (<see cref="InstanceShmem.Attach"/>):
    /// <see cref="ShmemCorruptException"/> for anything invalid, <see cref="ShmemException"/> for other failures.</summary>
    private InstanceShmem Attach(FileStat dir)
    {
        if (!SharedMemoryDescriptor.TryParseKind(_p.SegmentKind, out var kind))
            throw new ShmemException($"invalid backend parameter block: segment kind \"{_p.SegmentKind}\" is not {SharedMemoryDescriptor.SysVName} or {SharedMemoryDescriptor.PosixName}");
        return InstanceShmem.Attach(kind, _p.SegmentKey, _p.SegmentId, dir);
    }

    private static DsmConfig DsmConfigFor(BackendParameters p) =>
        DsmConfig.For(SharedMemoryDescriptor.TryParseDsmType(p.DsmType, out var type) ? type
                : throw new ShmemException($"invalid backend parameter block: dynamic shared memory type \"{p.DsmType}\""),
            p.DataDir, new FileStat(p.DataDirDevice, p.DataDirInode, 0, 0, 0));

    private int RunWorker(InstanceShmem shmem, LockOwner owner, LazyDsmSession dsm)
    {
        string entry = _p.Entry, argument = _p.Argument;
        if (_p.Pooled)
        {
            WorkerResolver.Preload(_p.Preload, _p.DataDir,
                (what, why) => _log.Write(BackendLog.Debug1, $"pool member: not preloading worker entry \"{what}\": {why}"));
            // First-use costs of what runs after the wake-up, paid while parked: the context type, the slot texts.
            _ = new HostWorkerContext(_name, argument, _p.Slot, shmem, owner, _log, _stop, _exit, _p.PostmasterPid, dsm);
            _ = shmem.Slots.Read(_p.Slot);
            PoolAssignment? assignment;
            try
            {
                assignment = shmem.Slots.WaitForAssignment(_p.Slot, _stop.Token);
            }
            catch (ShmemCorruptException e)
            {
                return ShmemInvalid($"could not read the work posted in backend slot {_p.Slot}", e);
            }
            if (assignment is null)
                return ExitDone; // stopped while parked: nothing was running
            (_name, entry, argument) = (assignment.Name, assignment.Entry, assignment.Argument);
            _log.SetWorker(_name);
        }
        if (entry == ConnectionHostArgument.Entry)
        {
            if (!ConnectionHostArgument.TryParse(argument, out string channel, out int maxSessions, out int concurrent,
                    out var policy, out string workerEntry, out string workerArgument))
            {
                Fatal($"connection backend: invalid argument \"{argument}\"");
                return ExitFailure;
            }
            var host = new HostWorkerContext(_name, workerArgument, _p.Slot, shmem, owner, _log, _stop, _exit, _p.PostmasterPid, dsm);
            return new ConnectionHost(host, owner, _stop, _log, _name).Run(channel, maxSessions, concurrent, policy, workerEntry, _p.DataDir);
        }
        object worker;
        try
        {
            worker = WorkerResolver.Resolve(entry, _p.DataDir);
        }
        catch (WorkerLoadException e)
        {
            Fatal($"background worker \"{_name}\": {e.Message}", hint: e.Hint);
            return ExitFailure;
        }
        var context = new HostWorkerContext(_name, argument, _p.Slot, shmem, owner, _log, _stop, _exit, _p.PostmasterPid, dsm)
        {
            DataDir = _p.DataDir,
            DsmConfig = DsmConfigFor(_p),
        };
        try
        {
            int code = worker is IBackgroundWorker sync ? sync.Run(context) : RunAsync((IAsyncBackgroundWorker)worker, context);
            if (_stop.Reason == StopReason.AdministratorCommand && code == ExitFailure)
                Fatal($"terminating background worker \"{_name}\" due to administrator command");
            return code;
        }
        catch (Exception caught)
        {
            return WorkerFailed(ExceptionReport.Unwrap(caught));
        }
    }

    /// <summary>An async worker, on this (the main) thread until its task completes; its continuations run on the
    /// thread pool. A fault is rethrown as the task's own exception (not an AggregateException).</summary>
    private int RunAsync(IAsyncBackgroundWorker worker, HostWorkerContext context) =>
        worker.RunAsync(context, _stop.Token).GetAwaiter().GetResult();

    /// <summary>The exit code, and the log entry, of a worker that ended with <paramref name="e"/>.</summary>
    private int WorkerFailed(Exception e)
    {
        if (e is OperationCanceledException && _stop.IsSet)
        {
            if (_stop.Reason == StopReason.AdministratorCommand)
                Fatal($"terminating background worker \"{_name}\" due to administrator command");
            return ExitFailure;
        }
        // Shared state failed validation under the worker (e.g. the DSM control segment, attached on first use): the
        // same verdict as at attach, so the supervisor rebuilds shared memory instead of restarting the worker.
        if (e is ShmemCorruptException corrupt && _stop.Reason != StopReason.PostmasterDeath)
            return ShmemInvalid($"background worker \"{_name}\"", corrupt);
        var shmem = e as ShmemException;
        Fatal($"background worker \"{_name}\" failed: {ExceptionReport.Summary(e)}", shmem?.Detail, shmem?.Hint, ExceptionReport.Trace(e));
        return ExitFailure;
    }

    /// <summary>
    /// A FATAL line about how the worker ended, unless the postmaster died: then the backend has already said
    /// "terminating background worker ... due to unexpected postmaster exit" (<see cref="OnPostmasterDeath"/>) and
    /// that stays its only FATAL line; what follows (a worker failing because its postmaster is gone) is DEBUG1.
    /// </summary>
    private void Fatal(string message, string? detail = null, string? hint = null, string? context = null) =>
        _log.Write(_stop.Reason == StopReason.PostmasterDeath ? BackendLog.Debug1 : BackendLog.Fatal, message, detail, hint, context);

    private void InstallSignals()
    {
        foreach (int s in new[] { Signals.SIGTERM, Signals.SIGINT, Signals.SIGQUIT, Signals.SIGHUP, PostmasterDeathWatch.DeathSignal })
            ProcessControl.UnignoreSignal(s);
        _signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
        {
            ctx.Cancel = true;
            if (PostmasterDeathWatch.PostmasterGone(_p.PostmasterPid))
                OnPostmasterDeath(); // a stop request after the postmaster died: its death is the story
            else
                _stop.Set(StopReason.AdministratorCommand);
        }));
        _signals.Add(PosixSignalRegistration.Create((PosixSignal)PostmasterDeathWatch.DeathSignal, ctx =>
        {
            ctx.Cancel = true;
            // The parent-death signal. A delivery while the parent pid is still the postmaster's is the first of a
            // dying postmaster's threads going (another delivery follows when the process is gone) or someone else's
            // SIGUSR2: either way, nothing to do yet.
            if (PostmasterDeathWatch.PostmasterGone(_p.PostmasterPid))
                OnPostmasterDeath();
        }));
        _signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGQUIT, _ => ProcessControl.ExitImmediately(ExitQuit)));
        _signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => ctx.Cancel = true));
        _signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx =>
        {
            ctx.Cancel = true;
            FollowLogLevel();
            _log.Write(BackendLog.Debug1, $"background worker \"{_name}\" received SIGHUP");
        }));
        // The postmaster started this process with SIGHUP and SIGINT blocked (their default action would end it):
        // the handlers are in place now, so one that arrived during start-up is delivered.
        ProcessControl.UnblockSignals([Signals.SIGHUP, Signals.SIGINT]);
    }

    /// <summary>Takes log_min_messages from the main header, where the postmaster publishes it (rewritten on reload).</summary>
    private void FollowLogLevel()
    {
        lock (_levelGate)
        {
            if (_attached is { } shmem && Volatile.Read(ref shmem.Main.Header.LogMinMessages) is > 0 and var published)
                _log.SetMinimum(published - 1);
        }
    }

    /// <summary>The postmaster is gone: one FATAL line (PostgreSQL's "terminating connection due to unexpected
    /// postmaster exit", for a background worker), then the worker is stopped and, if it does not finish within the
    /// grace period, the process ends. The stop reason is claimed before the line is written, so nothing the worker's
    /// ending logs (<see cref="Fatal"/>) can be a second, contradicting FATAL line; the worker is woken only after the
    /// line is written, so it cannot end the process before the line is out.</summary>
    private void OnPostmasterDeath()
    {
        if (Interlocked.Exchange(ref _orphaned, 1) != 0)
            return;
        _stop.Claim(StopReason.PostmasterDeath); // first: whatever the worker's ending logs is no second FATAL line
        _log.Write(BackendLog.Fatal, $"terminating background worker \"{_name}\" due to unexpected postmaster exit");
        PostmasterDeathWatch.ExitAfterGracePeriod(ExitFailure);
        _stop.Set(StopReason.PostmasterDeath); // last: the worker may end the process as soon as it wakes
    }
}
