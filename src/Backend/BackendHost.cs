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
public sealed class BackendHost
{
    public const int ExitDone = 0;
    public const int ExitFailure = 1;
    public const int ExitQuit = 2;

    private readonly BackendParameters _p;
    private readonly BackendLog _log;
    private readonly StopRequest _stop = new();
    private readonly ExitCallbacks _exit = new();
    private readonly List<PosixSignalRegistration> _signals = new();
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
        InstanceShmem shmem;
        try
        {
            shmem = Attach();
        }
        catch (ShmemException e)
        {
            _log.Write(BackendLog.Fatal, e.Message, e.Detail, e.Hint);
            return ExitFailure;
        }
        int code = ExitFailure;
        LazyDsmSession? dsm = null;
        try
        {
            if (!shmem.Slots.MarkActive(_p.Slot, _p.Generation, Environment.ProcessId))
            {
                _log.Write(BackendLog.Fatal, $"backend slot {_p.Slot} is not assigned to this process (generation {_p.Generation})");
                return ExitFailure;
            }
            _exit.OnShmemExit("release backend slot", () => shmem.Slots.MarkInactive(_p.Slot));
            var owner = shmem.Owners.CreateOwner(_p.Slot, shmem.Tranches);
            _exit.OnShmemExit("release locks", owner.ReleaseAll);
            dsm = new LazyDsmSession(() => new DsmSession(shmem, owner, DsmConfigFor(_p), new BackendShmemLog(_log)));
            code = RunWorker(shmem, owner, dsm);
        }
        finally
        {
            _exit.RunAll(() => dsm?.Created?.DetachAll(), (what, e) => _log.Write(BackendLog.Warning, $"exit callback \"{what}\" failed: {e.Message}"));
            shmem.Dispose();
            _log.Dispose();
        }
        return code;
    }

    private InstanceShmem Attach()
    {
        var dir = FileStat.TryStat(_p.DataDir)
                  ?? throw new ShmemException($"data directory \"{_p.DataDir}\" does not exist");
        if (dir.Device != _p.DataDirDevice || dir.Inode != _p.DataDirInode)
            throw new ShmemException($"data directory \"{_p.DataDir}\" is not the one the postmaster started with",
                $"postmaster: device {_p.DataDirDevice} inode {_p.DataDirInode}; now: device {dir.Device} inode {dir.Inode}");
        var kind = _p.SegmentKind == "posix" ? SegmentKind.Posix : SegmentKind.SysV;
        try
        {
            return InstanceShmem.Attach(kind, _p.SegmentKey, _p.SegmentId, dir);
        }
        catch (ShmemCorruptException e)
        {
            throw new ShmemException($"could not attach to shared memory (key {_p.SegmentKey}, ID {_p.SegmentId}) of data directory \"{_p.DataDir}\": {e.Message}",
                e.Detail);
        }
    }

    private static DsmConfig DsmConfigFor(BackendParameters p) => DsmConfig.For(p.DsmType switch
    {
        "sysv" => DsmType.SysV,
        "mmap" => DsmType.Mmap,
        _ => DsmType.Posix,
    }, p.DataDir, new FileStat(p.DataDirDevice, p.DataDirInode, 0, 0, 0));

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
            var assignment = shmem.Slots.WaitForAssignment(_p.Slot, _stop.Token);
            if (assignment is null)
                return ExitDone; // stopped while parked: nothing was running
            (_name, entry, argument) = (assignment.Name, assignment.Entry, assignment.Argument);
        }
        IBackgroundWorker worker;
        try
        {
            worker = WorkerResolver.Resolve(entry, _p.DataDir);
        }
        catch (WorkerLoadException e)
        {
            _log.Write(BackendLog.Fatal, $"background worker \"{_name}\": {e.Message}", hint: e.Hint);
            return ExitFailure;
        }
        var context = new HostWorkerContext(_name, argument, _p.Slot, shmem, owner, _log, _stop, _exit, _p.PostmasterPid, dsm);
        try
        {
            int code = worker.Run(context);
            if (_stop.IsSet && code == ExitFailure)
                _log.Write(BackendLog.Fatal, $"terminating background worker \"{_name}\" due to administrator command");
            return code;
        }
        catch (OperationCanceledException) when (_stop.IsSet)
        {
            _log.Write(BackendLog.Fatal, $"terminating background worker \"{_name}\" due to administrator command");
            return ExitFailure;
        }
        catch (Exception e)
        {
            _log.Write(BackendLog.Fatal, $"background worker \"{_name}\" failed: {e.GetType().Name}: {e.Message}");
            return ExitFailure;
        }
    }

    private void InstallSignals()
    {
        foreach (int s in new[] { Signals.SIGTERM, Signals.SIGINT, Signals.SIGQUIT, Signals.SIGHUP })
            ProcessControl.UnignoreSignal(s);
        _signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
        {
            ctx.Cancel = true;
            if (PostmasterDeathWatch.PostmasterGone(_p.PostmasterPid))
                OnPostmasterDeath(); // the parent-death signal
            else
                _stop.Set();
        }));
        _signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGQUIT, _ => ProcessControl.ExitImmediately(ExitQuit)));
        _signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => ctx.Cancel = true));
        _signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx =>
        {
            ctx.Cancel = true;
            _log.Write(BackendLog.Debug1, $"background worker \"{_name}\" received SIGHUP");
        }));
    }

    private void OnPostmasterDeath()
    {
        if (Interlocked.Exchange(ref _orphaned, 1) != 0)
            return;
        _log.Write(BackendLog.Fatal, $"terminating background worker \"{_name}\" due to unexpected postmaster exit");
        PostmasterDeathWatch.ExitAfterGracePeriod(ExitFailure);
        _stop.Set();
    }
}
