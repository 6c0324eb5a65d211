using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;
using Postmaster.Workers;
using EngineRegistry = Postmaster.Shmem.Registry.DsmRegistry;
using LWLockHandle = Postmaster.Workers.LWLockHandle;
using LWLockMode = Postmaster.Shmem.Locks.LWLockMode;
using ShmemRegion = Postmaster.Workers.ShmemRegion;

namespace Postmaster.Backend;

/// <summary>The backend's implementation of the SDK's <see cref="WorkerContext"/>: the engine's services behind the
/// SDK's facades. The DSM session and the registry are made on first use (see <see cref="LazyDsmSession"/>).</summary>
internal sealed class HostWorkerContext : WorkerContext
{
    private const string NamedLockPrefix = "lock:";
    private readonly InstanceShmem _shmem;
    private readonly LockOwner _owner;
    private readonly WorkerLocks _locks;
    private readonly BackendLog _log;
    private readonly StopRequest _stop;
    private readonly ExitCallbacks _exit;

    private readonly int _postmasterPid;
    private readonly LazyDsmSession _dsm;
    private readonly object _registryGate = new();
    private DsmRegistry? _registry;

    public HostWorkerContext(string name, string argument, int slot, InstanceShmem shmem, LockOwner owner, BackendLog log,
        StopRequest stop, ExitCallbacks exit, int postmasterPid, LazyDsmSession dsm)
    {
        _stop = stop;
        _postmasterPid = postmasterPid;
        _dsm = dsm;
        Name = name;
        Argument = argument;
        Slot = slot;
        _shmem = shmem;
        _owner = owner;
        _locks = new WorkerLocks(owner);
        _log = log;
        _exit = exit;
    }

    /// <summary>For built-in workers that read the instance as a whole (metrics): its shared memory, data directory and
    /// DSM configuration. Not part of the SDK.</summary>
    internal InstanceShmem Shmem => _shmem;

    internal string DataDir { get; init; } = "";

    internal Postmaster.Shmem.Dsm.DsmConfig? DsmConfig { get; init; }

    public override string Name { get; }

    public override string Argument { get; }

    public override int Slot { get; }

    public override CancellationToken Stopping => _stop.Token;

    public override ExitCallbacks Exit => _exit;

    public override bool WaitUntilStopping(TimeSpan timeout) => _stop.Wait(timeout);

    public override WorkerLocks Locks => _locks;

    public override DynamicSharedMemory Dsm => _dsm.Facade;

    public override DsmRegistry Registry
    {
        get
        {
            lock (_registryGate)
                return _registry ??= new DsmRegistry(new EngineRegistry(_shmem, _owner, _dsm.Session));
        }
    }

    public override ShmemRegion InitStruct(string name, long size, out bool found) =>
        new(_shmem.Main.Index.InitStruct(name, size, out found));

    public override LWLockHandle NamedLock(string name)
    {
        var indexLock = _shmem.Tranches.Builtin(BuiltinLWLock.ShmemIndex);
        _owner.Acquire(indexLock, LWLockMode.Exclusive);
        try
        {
            var region = _shmem.Main.Index.InitStruct(NamedLockPrefix + name, LWLockSegment.RequiredSize(1), out bool found);
            var segment = _shmem.LockSegment;
            long offset = segment.OffsetOf(region);
            if (found)
                return new LWLockHandle(segment.Lock(offset));
            int tranche = _shmem.Tranches.Register(_owner, name);
            return new LWLockHandle(segment.InitializeLock(offset, tranche));
        }
        finally
        {
            _owner.Release(indexLock);
        }
    }

    public override DynamicWorkerHandle StartDynamicWorker(string name, string entry, string argument, TimeSpan timeout)
    {
        var queue = _shmem.Requests;
        int index = queue.Post(WorkerRequestKind.Spawn, name, entry, argument, "", _postmasterPid)
                    ?? throw new InvalidOperationException("the postmaster's request queue is full");
        var r = queue.WaitOrWithdraw(index, timeout);
        if (r is null)
        {
            throw new InvalidOperationException($"the postmaster did not start worker \"{name}\" within {timeout.TotalSeconds:0} s");
        }
        if (!r.Value.Ok)
            throw new InvalidOperationException($"could not start worker \"{name}\": {r.Value.Error}");
        return new DynamicWorkerHandle(r.Value.Pid, r.Value.Slot, r.Value.Generation);
    }

    public override bool WaitForExit(DynamicWorkerHandle handle, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            var info = _shmem.Slots.Read(handle.Slot);
            if (info.Generation != handle.Generation || info.State == BackendSlotState.Unused || !ProcessControl.IsAlive(handle.Pid))
                return true;
            if (_stop.Wait(WaitPoll))
                return false;
        }
        return false;
    }

    private static readonly TimeSpan WaitPoll = TimeSpan.FromMilliseconds(5);

    public override void Log(string message) => _log.Write(BackendLog.Log, message);

    public override void Warning(string message) => _log.Write(BackendLog.Warning, message);

    public override void Debug(string message) => _log.Write(BackendLog.Debug1, message);
}
