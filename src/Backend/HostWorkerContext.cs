using Postmaster.Shmem;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Locks;
using Postmaster.Workers;

namespace Postmaster.Backend;

/// <summary>The backend's implementation of <see cref="WorkerContext"/>.</summary>
public sealed class HostWorkerContext : WorkerContext
{
    private const string NamedLockPrefix = "lock:";
    private readonly InstanceShmem _shmem;
    private readonly LockOwner _owner;
    private readonly BackendLog _log;
    private readonly CancellationToken _stopping;
    private readonly ExitCallbacks _exit;

    public HostWorkerContext(string name, string argument, int slot, InstanceShmem shmem, LockOwner owner, BackendLog log,
        CancellationToken stopping, ExitCallbacks exit)
    {
        Name = name;
        Argument = argument;
        Slot = slot;
        _shmem = shmem;
        _owner = owner;
        _log = log;
        _stopping = stopping;
        _exit = exit;
    }

    public override string Name { get; }

    public override string Argument { get; }

    public override int Slot { get; }

    public override CancellationToken Stopping => _stopping;

    public override ExitCallbacks Exit => _exit;

    public override LockOwner Locks => _owner;

    public InstanceShmem Shmem => _shmem;

    public BackendLog ServerLog => _log;

    public override ShmemRegion InitStruct(string name, long size, out bool found) =>
        _shmem.Main.Index.InitStruct(name, size, out found);

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
                return segment.Lock(offset);
            int tranche = _shmem.Tranches.Register(_owner, name);
            return segment.InitializeLock(offset, tranche);
        }
        finally
        {
            _owner.Release(indexLock);
        }
    }

    public override void Log(string message) => _log.Write(BackendLog.Log, message);

    public override void Warning(string message) => _log.Write(BackendLog.Warning, message);
}
