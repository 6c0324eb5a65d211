using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.Registry;

/// <summary>
/// The DSM registry as one process uses it (PostgreSQL 17's GetNamedDSMSegment, with 18's retry): a dynamic shared
/// memory segment known by name to every process of the instance, created and initialised by the first caller and
/// attached by everyone else. Built on <see cref="DsmSession"/> (segments) and <see cref="DsmRegistryTable"/> (the
/// shared name table in the main segment). Not for the supervisor, which creates no DSM.
/// <para><b>Lifecycle.</b> Construct one per process, after its <see cref="DsmSession"/>, with the same
/// <see cref="LockOwner"/>; it holds no resource of its own (mappings belong to the session, whose exit path
/// detaches them). Registered segments are pinned: they survive their creator, backend exits and reconcile-style
/// recovery, until <see cref="Release"/>, shutdown, or a full restart, which empties the table with the main
/// segment and destroys every segment (as PostgreSQL's crash restart wipes its registry).</para>
/// <para><b>Overview.</b> Each name moves through <see cref="DsmRegistryEntryState"/>: Free → Initialising (pid) →
/// Ready, or → Failed. The DsmRegistry LWLock is held only for the few memory operations of a lookup or a state
/// change, never while creating a segment or running the initialiser, so a slow initialiser delays callers of its own
/// name only (PostgreSQL holds a dshash partition lock, which covers 1/128 of all names, across the initialiser).
/// Callers of a busy name sleep on the entry's <see cref="SharedConditionVariable"/>, woken by every state change,
/// and every <see cref="OwnerCheckInterval"/> check that the owner still lives.
/// <list type="bullet">
/// <item>First caller: claims the entry (Initialising, with its pid and slot), creates the segment and records it in
/// the entry as pending, runs the initialiser on the zeroed segment, then pins it and publishes it Ready, in that
/// order (PostgreSQL 18): nobody can attach a segment whose initialisation has not finished.</item>
/// <item>Initialiser throws: the segment is destroyed, the entry becomes Failed, waiters wake, and the next caller
/// initialises from scratch (PostgreSQL 17 left such an entry found = true over an uninitialised segment).</item>
/// <item>Initialiser dies (SIGKILL): a waiter, or the next caller, sees the owner gone (its pid not alive, or its
/// backend slot now recorded for another pid: that catches pid reuse) and takes the entry over, claim token
/// checked under the lock so only one does. It unpins the dead owner's pending segment if that got pinned; the dead
/// process's own reference is given back by the supervisor's reconcile of its slot
/// (<see cref="DsmControl.ReconcileSlot"/>), or at shutdown/full restart, which then destroys the segment.</item>
/// <item>Later callers: a shared-lock lookup, then <see cref="DsmSession.FindMapping"/> (the hot path: no system
/// call) or, the first time in this process, <see cref="DsmSession.Attach"/> plus a mapping pin.</item>
/// </list></para>
/// <para><b>Threads.</b> Safe to use from several threads: every use of the <see cref="LockOwner"/> happens under the
/// session's process-local gate, which is never held across a system call, the initialiser or a sleep.</para>
/// <para><b>Errors</b> (PostgreSQL's messages, as <see cref="ShmemException"/>): <c>DSM segment name cannot be
/// empty</c>, <c>DSM segment name too long</c> (more than <see cref="DsmRegistryTable.MaxNameBytes"/> UTF-8 bytes),
/// <c>DSM segment size must be nonzero</c>, <c>requested DSM segment size does not match size of existing segment</c>,
/// <c>could not map dynamic shared memory segment</c>; ours: <c>too many named DSM segments</c> (the table is full),
/// and a call for a name from inside that name's own initialiser (PostgreSQL self-deadlocks there). Two initialisers
/// that each ask for the other's name from inside their initialiser still wait for each other for ever: do not.</para>
/// </summary>
internal sealed partial class DsmRegistry
{
    /// <summary>How often a caller waiting for a busy name checks that its owner still lives (a dead process sends no
    /// wake-up).</summary>
    public static readonly TimeSpan OwnerCheckInterval = TimeSpan.FromMilliseconds(50);

    private readonly DsmRegistryTable _table;
    private readonly LWLockOwnerTable _owners;
    private readonly LockOwner _owner;
    private readonly DsmSession _dsm;
    private readonly LWLockHandle _lock;
    private readonly LWLockTrancheTable _tranches;
    private readonly object _gate;
    private readonly object _attachGate = new();

    /// <summary>Names this process is initialising now → the managed thread doing it (re-entrance check).
    /// Guarded by itself.</summary>
    private readonly Dictionary<string, int> _initialising = new(StringComparer.Ordinal);

    /// <summary><see cref="_initialising"/>'s count, readable without its lock (the hot path skips the check at 0).</summary>
    private int _initialisingCount;

    private readonly int _pid;
    private readonly int _slot;

    /// <summary>The registry for this process. <paramref name="owner"/> must be the one <paramref name="dsm"/> was built
    /// with (the registry shares the session's gate to keep the owner single-user).</summary>
    public DsmRegistry(InstanceShmem instance, LockOwner owner, DsmSession dsm)
    {
        ArgumentNullException.ThrowIfNull(instance);
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentNullException.ThrowIfNull(dsm);
        if (!ReferenceEquals(dsm.Owner, owner))
            throw new ArgumentException("the DSM registry must use the lock owner its DSM session was built with", nameof(owner));
        _table = instance.DsmRegistryTable;
        _owners = instance.Owners;
        _owner = owner;
        _dsm = dsm;
        _gate = dsm.Gate;
        _lock = instance.Tranches.Builtin(BuiltinLWLock.DsmRegistry);
        _tranches = instance.Tranches;
        _pid = owner.Pid;
        _slot = owner.Slot;
    }

    /// <summary>Test hook: runs after a new segment is initialised and pinned, before it is published (the window in
    /// which a death leaves a pinned segment that only the entry's pending handle names).</summary>
    internal Action<DsmHandle>? BeforePublish { get; set; }

    /// <summary>Test hook: runs when a caller is about to sleep because another process owns the name.</summary>
    internal Action? BeforeSleep { get; set; }

    /// <summary>This process's DSM session (the one the registry was built on).</summary>
    internal DsmSession Session => _dsm;

    /// <summary>The shared table (for <see cref="DsmRegistryTable.List"/>).</summary>
    public DsmRegistryTable Table => _table;

    /// <summary>
    /// PostgreSQL's GetNamedDSMSegment: the segment registered as <paramref name="name"/>, creating it with
    /// <paramref name="size"/> bytes on first use in the instance. The first caller gets a zeroed segment,
    /// runs <paramref name="init"/> on it (if given) before anyone else can see it, and gets
    /// <paramref name="found"/> = false; every other caller, concurrent or later, waits until that has finished and
    /// gets the same segment with <paramref name="found"/> = true. If <paramref name="init"/> throws, the exception
    /// propagates, nothing is registered, and the next caller initialises again. The mapping is pinned for the life of
    /// the process (see <see cref="NamedSegment"/>).
    /// <para><paramref name="init"/> may register other names, take locks and create tranches: no registry lock is held
    /// while it runs. <paramref name="cancellationToken"/> ends a wait for another process's initialisation
    /// (checked at least every <see cref="OwnerCheckInterval"/>); it does not interrupt this process's own
    /// initialiser.</para>
    /// </summary>
    public NamedSegment GetNamedSegment(string name, long size, Action<ShmemRegion>? init, out bool found,
        CancellationToken cancellationToken = default) =>
        GetNamed(name, size, DsmRegistryEntryType.Segment,
            init is null ? null : (segment, _) => { init(segment.Region); return segment.Size; }, out found, cancellationToken);

    /// <summary>
    /// <see cref="GetNamedSegment"/> for an entry of <paramref name="type"/>: a Ready entry of another type is an error
    /// (master's "requested DSM segment does not match type of existing entry"). <paramref name="init"/> gets the new
    /// segment and the entry's index and returns the bytes the entry holds in all (the registry's size column).
    /// </summary>
    internal NamedSegment GetNamed(string name, long size, DsmRegistryEntryType type, Func<DsmSegment, int, long>? init,
        out bool found, CancellationToken cancellationToken)
    {
        Span<byte> buffer = stackalloc byte[DsmRegistryEntry.NameCapacity];
        var key = buffer[..DsmRegistryTable.EncodeName(name, buffer)];
        if (size == 0)
            throw new ShmemException("DSM segment size must be nonzero");
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        CheckNotReentrant(name);
        uint hash = DsmRegistryTable.Hash(key);
        int takeOver = NoClaim;
        while (true)
        {
            if (takeOver == NoClaim && FindReady(key, hash, out uint ready, out long readySize, out var readyType))
            {
                var attached = MapReady(name, size, type, ready, readySize, readyType, key, hash);
                if (attached is not null)
                {
                    found = true;
                    return new NamedSegment(name, attached);
                }
                continue; // released (and perhaps re-created) since the lookup: look again
            }
            var step = ClaimForInit(name, key, hash, size, type, takeOver);
            takeOver = NoClaim;
            switch (step.Kind)
            {
                case StepKind.Ready:
                    var mapped = MapReady(name, size, type, step.Handle, step.Size, step.Type, key, hash);
                    if (mapped is not null)
                    {
                        found = true;
                        return new NamedSegment(name, mapped);
                    }
                    break;
                case StepKind.Claimed:
                    found = false;
                    return Initialise(name, size, type, init, step);
                case StepKind.Busy:
                    takeOver = WaitForOwner(step, cancellationToken);
                    break;
                default:
                    throw new InvalidOperationException($"internal error: unexpected registry step {step.Kind}; please report");
            }
        }
    }

    /// <summary>
    /// Drops <paramref name="name"/> from the registry (PostgreSQL has no way to): waits while another process
    /// initialises it, then removes the entry, detaches this process's mapping and removes the pin, so the segment is
    /// destroyed once no process has it attached. Other processes keep their mappings until they detach or exit; a
    /// later <see cref="GetNamedSegment"/> of the name creates a new segment. A Failed entry, or one whose owner died,
    /// is dropped too. False when the name is not registered.
    /// </summary>
    public bool Release(string name, CancellationToken cancellationToken = default)
    {
        Span<byte> buffer = stackalloc byte[DsmRegistryEntry.NameCapacity];
        var key = buffer[..DsmRegistryTable.EncodeName(name, buffer)];
        CheckNotReentrant(name);
        uint hash = DsmRegistryTable.Hash(key);
        int takeOver = NoClaim;
        while (true)
        {
            var step = ClaimForRelease(key, hash, takeOver);
            takeOver = NoClaim;
            switch (step.Kind)
            {
                case StepKind.Absent:
                    return false;
                case StepKind.Claimed:
                    DropPending(step.Pending, step.Type);
                    FreeEntry(name, step);
                    return true;
                case StepKind.Busy:
                    takeOver = WaitForOwner(step, cancellationToken);
                    break;
                default:
                    throw new InvalidOperationException($"internal error: unexpected registry step {step.Kind}; please report");
            }
        }
    }

    /// <summary>The registry's rows (<see cref="DsmRegistryTable.List"/>): no lock taken.</summary>
    public IReadOnlyList<DsmRegistryEntryInfo> List() => _table.List();

    /// <summary>
    /// Creates, initialises, pins and publishes the segment of an entry this process has just claimed. First unpins
    /// the pending segment a dead owner may have left. On any failure the segment is destroyed and the entry becomes
    /// Failed (waiters wake, and the next caller initialises), then the exception propagates.
    /// </summary>
    private NamedSegment Initialise(string name, long size, DsmRegistryEntryType type, Func<DsmSegment, int, long>? init, Step claim)
    {
        lock (_initialising)
        {
            _initialising[name] = Environment.CurrentManagedThreadId;
            Volatile.Write(ref _initialisingCount, _initialising.Count);
        }
        DsmSegment? segment = null;
        try
        {
            if (claim.Pending != 0) // a dead owner's; its own reference goes at reconcile
                DropPending(claim.Pending, claim.Type, detachMine: false);
            segment = _dsm.Create(size, DsmCreateFlags.Zeroed)!; // never null without NullIfMaxSegments
            RecordPending(name, claim, segment.Handle);          // before the pin: a pinned segment is always findable
            long total = init?.Invoke(segment, claim.Index) ?? segment.Size;
            _dsm.Pin(segment);
            _dsm.PinMapping(segment);
            BeforePublish?.Invoke(segment.Handle);
            Publish(name, claim, segment.Handle, total);
            return new NamedSegment(name, segment);
        }
        catch
        {
            try
            {
                if (segment is not null)
                    DropPending(segment.Handle.Value, type);
            }
            finally
            {
                MarkFailed(claim);
            }
            throw;
        }
        finally
        {
            lock (_initialising)
            {
                _initialising.Remove(name);
                Volatile.Write(ref _initialisingCount, _initialising.Count);
            }
        }
    }

    /// <summary>Detaches this process's mapping of <paramref name="handle"/> (if any) and removes the segment's pin
    /// (if any): the segment is destroyed when its last mapping goes. 0 does nothing.</summary>
    private void DropSegment(uint handle)
    {
        if (handle == 0)
            return;
        var h = new DsmHandle(handle);
        try
        {
            if (_dsm.FindMapping(h) is { } mine)
                _dsm.Detach(mine);
        }
        finally
        {
            _dsm.UnpinIfPinned(h);
        }
    }

    /// <summary>The attached segment of a Ready entry: this process's existing mapping, else a new one (attached and
    /// mapping-pinned). Null when the segment is gone because the entry changed since it was read (the caller looks
    /// again); an error when the entry still lists it.</summary>
    private DsmSegment? MapReady(string name, long size, DsmRegistryEntryType type, uint handle, long existingSize,
        DsmRegistryEntryType existingType, ReadOnlySpan<byte> key, uint hash)
    {
        if (existingType != type)
            throw new ShmemException("requested DSM segment does not match type of existing entry",
                $"\"{name}\" is {Describe(existingType)}; {Describe(type)} was requested.");
        if (existingSize != size)
            throw new ShmemException("requested DSM segment size does not match size of existing segment",
                $"DSM segment \"{name}\" has {existingSize} bytes; {size} were requested.");
        var h = new DsmHandle(handle);
        var segment = _dsm.FindMapping(h);
        if (segment is { IsAttached: true, IsMappingPinned: true })
            return segment; // the hot path
        lock (_attachGate) // two threads of this process attaching the same segment: one attaches, one finds it
        {
            segment = _dsm.FindMapping(h);
            if (segment is null)
            {
                segment = _dsm.Attach(h);
                if (segment is null)
                {
                    if (FindReady(key, hash, out uint now, out _, out _) && now == handle)
                        throw new ShmemException("could not map dynamic shared memory segment",
                            $"The DSM registry lists segment {h} for \"{name}\", but it no longer exists.");
                    return null;
                }
            }
            _dsm.PinMapping(segment);
            return segment;
        }
    }

    /// <summary>Sleeps on a busy entry's condition variable (the ticket was taken under the lock) until a state change
    /// or <see cref="OwnerCheckInterval"/>. Returns the entry's claim token when its owner is dead (the next step takes
    /// the entry over if the token still matches), else <see cref="NoClaim"/>.</summary>
    private int WaitForOwner(Step busy, CancellationToken cancellationToken)
    {
        ref var changed = ref _table.Entry(busy.Index).Changed;
        try
        {
            if (!IsOwnerAlive(busy.OwnerPid, busy.OwnerSlot))
                return busy.Claim;
            BeforeSleep?.Invoke();
            changed.Sleep(busy.Ticket, OwnerCheckInterval);
        }
        finally
        {
            changed.CancelSleep();
        }
        cancellationToken.ThrowIfCancellationRequested();
        return NoClaim;
    }

    /// <summary>An owner lives while its pid is a live process and its backend slot still records that pid (a reused
    /// slot, or a pid reused by an unrelated process, proves the owner gone).</summary>
    private bool IsOwnerAlive(int pid, int slot)
    {
        if (!ProcessControl.IsAlive(pid))
            return false;
        return (uint)slot >= (uint)_owners.SlotCount || _owners.RecordedPid(slot) == pid;
    }

    private void CheckNotReentrant(string name)
    {
        if (Volatile.Read(ref _initialisingCount) == 0)
            return; // no initialiser runs in this process (a re-entrant call would see its own entry counted)
        lock (_initialising)
        {
            if (_initialising.TryGetValue(name, out int thread) && thread == Environment.CurrentManagedThreadId)
                throw new ShmemException($"DSM segment \"{name}\" is being initialised by this process",
                    "The registry was called for that name from inside its own initialiser, which would wait for itself.");
        }
    }
}
