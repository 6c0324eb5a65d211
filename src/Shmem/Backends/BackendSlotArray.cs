using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Text;

namespace Postmaster.Shmem.Backends;

/// <summary>What the postmaster wants a pooled backend to become (written into the slot, then the futex word is woken).</summary>
/// <remarks>A class, not a struct: Nullable&lt;T&gt;.Value over a struct of this assembly is not precompiled by ReadyToRun and
/// would be JIT-compiled in the woken pool member, on the request path.</remarks>
internal sealed record PoolAssignment(string Name, string Entry, string Argument, long Generation);

/// <summary>A read-only copy of one slot, for status and inspection.</summary>
/// <param name="AttachedGeneration">The generation a process attached to and ran in this slot (kept after the slot is
/// freed, reset when it is assigned again): tells a requester that its worker ran even if it has exited already.</param>
internal readonly record struct BackendSlotInfo(int Slot, BackendSlotState State, int Pid, long Generation, string Name,
    string Entry, long StartedAtUnixMs, bool Pooled, int Restarts, long AttachedGeneration = 0, SessionInfo Session = default);

/// <summary>A connection backend's client session as its slot shows it: the client's address (empty when the backend
/// waits for a connection), when the postmaster accepted it, the instance-wide session id, and how many sessions this
/// backend has been given (0 = none yet: not a connection backend, or one that has not served yet).</summary>
internal readonly record struct SessionInfo(string Client, long StartedAtUnixMs, long Id, int Count, int Open = 0);

/// <summary>
/// The backend slots in the main segment: one per possible backend (max_backends). Overview: the postmaster assigns
/// a slot (Unused → Assigned, new generation) before starting a process; the backend marks it Active once attached
/// and back to Assigned as the last step of its exit path; the postmaster frees it (→ Unused) after reaping the
/// process. Only atomic word operations are used (the postmaster never takes a shared lock), and the postmaster keeps
/// its own private record of which slots it assigned, so a corrupt array cannot mislead it.
/// Pooled backends park on <c>PoolWord</c> (a futex) until the postmaster posts a <see cref="PoolAssignment"/>.
/// </summary>
internal sealed unsafe class BackendSlotArray
{
    public const int MaxNameBytes = 63;
    public const int MaxEntryBytes = 255;
    public const int MaxArgumentBytes = 1023;
    public const int MaxClientBytes = 63;
    private const int SessionClientOffset = 1408;
    public const int PoolIdle = 0;
    public const int PoolAssigned = 1;
    public const int PoolNotPooled = 2;

    /// <summary>A parked pool member re-checks its word this often even without a wake-up (a backstop only).</summary>
    public static readonly TimeSpan PoolRecheck = TimeSpan.FromSeconds(5);
    private const uint Magic = 0x504D_4253; // "PMBS"
    private const uint LayoutVersion = 5; // 3: session fields; 4: assigned-at timestamp; 5: open sessions

    [StructLayout(LayoutKind.Explicit, Size = 64)]
    private struct Header
    {
        [FieldOffset(0)] public uint Magic;
        [FieldOffset(4)] public uint LayoutVersion;
        [FieldOffset(8)] public int SlotCount;
        [FieldOffset(12)] public int SlotSize;
        [FieldOffset(16)] public long Size;
    }

    [StructLayout(LayoutKind.Explicit, Size = SlotSize)]
    private struct Slot
    {
        public const int SlotSize = 1536;
        [FieldOffset(0)] public int State;            // BackendSlotState; written by postmaster (assign/free) and backend (active/assigned)
        [FieldOffset(4)] public int Pid;              // written by the backend when it marks itself Active
        [FieldOffset(8)] public long Generation;      // written by the postmaster on assignment
        [FieldOffset(16)] public long StartedAtUnixMs;
        [FieldOffset(24)] public int PoolWord;        // futex: PoolIdle / PoolAssigned / PoolNotPooled
        [FieldOffset(28)] public int Pooled;          // 1 while the process is (or was started as) a pool member
        [FieldOffset(32)] public int Restarts;        // written by the postmaster: restarts of this worker so far
        [FieldOffset(48)] public long AssignedAtTimestamp; // postmaster: Stopwatch timestamp (CLOCK_MONOTONIC) of the assignment, just before the spawn
        [FieldOffset(40)] public long AttachedGeneration; // the generation a process attached and ran (backend: MarkActive;
                                                          // postmaster: a pool member's new work); 0 after Assign, kept by Free
        [FieldOffset(64)] public fixed byte Name[MaxNameBytes + 1];
        [FieldOffset(128)] public fixed byte Entry[MaxEntryBytes + 1];
        [FieldOffset(384)] public fixed byte Argument[MaxArgumentBytes + 1];
        // Connection backends' session (written by the postmaster's acceptor thread at each hand-off and session end):
        [FieldOffset(SessionClientOffset)] public fixed byte SessionClient[MaxClientBytes + 1];
        [FieldOffset(1472)] public int SessionCount;
        [FieldOffset(1480)] public long SessionStartedAtUnixMs;
        [FieldOffset(1488)] public long SessionId;
        [FieldOffset(1496)] public int SessionsOpen; // sessions in progress (more than one: concurrent_sessions_per_backend)
    }

    /// <summary>Most slots an array may declare (a sanity bound for validation; max_backends is far lower).</summary>
    public const int MaxSlots = 1 << 16;

    /// <summary>Name used in validation results.</summary>
    public const string StructureName = "backend slot array";

    private readonly ShmemRegion _region;
    private readonly int _count;

    private BackendSlotArray(ShmemRegion region, int count)
    {
        _region = region;
        _count = count;
    }

    public static long RequiredSize(int slots) => Unsafe.SizeOf<Header>() + (long)slots * Slot.SlotSize;

    /// <summary>Slots, as validated when the array was attached (immutable afterwards: garbage written over the
    /// header later does not change which memory the accessors touch).</summary>
    public int Count => _count;

    public static BackendSlotArray Initialize(ShmemRegion region, int slots)
    {
        ref var h = ref region.Ref<Header>(0);
        h.SlotCount = slots;
        h.SlotSize = Slot.SlotSize;
        h.Size = RequiredSize(slots);
        h.LayoutVersion = LayoutVersion;
        Volatile.Write(ref h.Magic, Magic);
        return new BackendSlotArray(region, slots);
    }

    /// <summary>Validates an array the postmaster initialised; <see cref="ShmemCorruptException"/> naming the problem.</summary>
    public static BackendSlotArray Attach(ShmemRegion region)
    {
        if (ValidateHeader(region) is { } problem)
            throw new ShmemCorruptException(problem);
        return new BackendSlotArray(region, region.Ref<Header>(0).SlotCount);
    }

    /// <summary>The header checks: room, magic, layout version, slot size, slot count within 0..<see cref="MaxSlots"/>,
    /// size matching the count and fitting the region. Never throws.</summary>
    private static string? ValidateHeader(ShmemRegion region)
    {
        if (region.IsNull)
            return $"{StructureName}: not mapped";
        if (region.Size < Unsafe.SizeOf<Header>())
            return ShmemProblem.TooSmall(StructureName, region.Size, Unsafe.SizeOf<Header>());
        var h = region.Ref<Header>(0);
        if (ShmemProblem.Header(StructureName, region.Size, Unsafe.SizeOf<Header>(), h.Magic, Magic, h.LayoutVersion, LayoutVersion)
            is { } problem)
            return problem;
        if (h.SlotSize != Slot.SlotSize)
            return $"{StructureName}: slot size {h.SlotSize} (expected {Slot.SlotSize})";
        if (h.SlotCount < 0 || h.SlotCount > MaxSlots)
            return $"{StructureName}: slot count {h.SlotCount} is outside 0..{MaxSlots}";
        if (h.Size != RequiredSize(h.SlotCount) || h.Size > region.Size)
            return $"{StructureName}: size {h.Size} does not match {RequiredSize(h.SlotCount)} for {h.SlotCount} slots " +
                   $"or exceeds the region of {region.Size} bytes";
        return null;
    }

    /// <summary>
    /// Checks the array as the supervisor relies on it: the header (<see cref="ValidateHeader"/>) still describes the
    /// slot count found at attach, and every slot's state and pool word hold defined values. Reads two words per slot;
    /// never throws. Null when valid, else the first problem, e.g.
    /// <c>backend slot array: wrong magic number 0x00000000 (expected 0x504D4253)</c>.
    /// </summary>
    public string? Validate()
    {
        if (ValidateHeader(_region) is { } problem)
            return problem;
        int declared = _region.Ref<Header>(0).SlotCount;
        if (declared != _count)
            return $"{StructureName}: slot count {declared} differs from {_count}, the count at attach";
        for (int i = 0; i < _count; i++)
        {
            ref var s = ref At(i);
            int state = Volatile.Read(ref s.State);
            if (!IsDefined(state))
                return $"{StructureName}: slot {i} has state {state}, which is not a slot state";
            int pool = Volatile.Read(ref s.PoolWord);
            if (pool is not (PoolIdle or PoolAssigned or PoolNotPooled))
                return $"{StructureName}: slot {i} has pool word {pool}, which is not {PoolIdle}, {PoolAssigned} or {PoolNotPooled}";
            if (state != (int)BackendSlotState.Unused && Volatile.Read(ref s.Pid) < 0)
                return $"{StructureName}: slot {i} records pid {s.Pid}";
        }
        return null;
    }

    private static bool IsDefined(int state) =>
        state is (int)BackendSlotState.Unused or (int)BackendSlotState.Assigned or (int)BackendSlotState.Active;

    /// <summary>Slot <paramref name="slot"/>: always inside the region (bounded by the count validated at attach).
    /// A slot number outside 0..Count-1 is the caller's error (<see cref="ArgumentOutOfRangeException"/>).</summary>
    private ref Slot At(int slot)
    {
        if ((uint)slot >= (uint)_count)
            throw new ArgumentOutOfRangeException(nameof(slot), $"backend slot {slot} does not exist (there are {_count})");
        return ref _region.Ref<Slot>(Unsafe.SizeOf<Header>() + (long)slot * Slot.SlotSize);
    }

    /// <summary>Postmaster: reserve <paramref name="slot"/> for a process it is about to start.</summary>
    public void Assign(int slot, long generation, string name, string entry, string argument, bool pooled, int restarts = 0)
    {
        ref var s = ref At(slot);
        s.Restarts = restarts;
        s.Pid = 0;
        s.Generation = generation;
        s.StartedAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        s.AssignedAtTimestamp = System.Diagnostics.Stopwatch.GetTimestamp();
        s.Pooled = pooled ? 1 : 0;
        s.PoolWord = pooled ? PoolIdle : PoolNotPooled;
        s.AttachedGeneration = 0;
        ClearSession(ref s);
        WriteText(ref s, name, entry, argument);
        Volatile.Write(ref s.State, (int)BackendSlotState.Assigned);
    }

    /// <summary>Postmaster: the process is gone and reaped; the slot is free again.</summary>
    public void Free(int slot)
    {
        ref var s = ref At(slot);
        s.Pid = 0;
        Volatile.Write(ref s.State, (int)BackendSlotState.Unused);
    }

    /// <summary>The <see cref="System.Diagnostics.Stopwatch"/> timestamp of the slot's assignment (postmaster, just before it
    /// spawned the process): a backend's start latency is measured from it.</summary>
    public long AssignedAt(int slot) => Volatile.Read(ref At(slot).AssignedAtTimestamp);

    /// <summary>Backend: attached and running (Assigned → Active). False if the slot is not ours to claim
    /// (wrong generation or state): the backend must then exit without touching anything else.</summary>
    public bool MarkActive(int slot, long generation, int pid)
    {
        ref var s = ref At(slot);
        if (Volatile.Read(ref s.Generation) != generation)
            return false;
        s.Pid = pid;
        if (Interlocked.CompareExchange(ref s.State, (int)BackendSlotState.Active, (int)BackendSlotState.Assigned) !=
            (int)BackendSlotState.Assigned)
            return false;
        Volatile.Write(ref s.AttachedGeneration, generation);
        return true;
    }

    /// <summary>Postmaster: record the pid of the process it just started for <paramref name="slot"/> (inspection then
    /// never shows a starting backend without a pid). The backend writes the same value when it marks itself Active.</summary>
    public void RecordPid(int slot, long generation, int pid)
    {
        ref var s = ref At(slot);
        if (Volatile.Read(ref s.Generation) == generation && Volatile.Read(ref s.State) == (int)BackendSlotState.Assigned)
            Interlocked.CompareExchange(ref s.Pid, pid, 0);
    }

    /// <summary>Backend: the last step of a clean exit path (Active → Assigned).</summary>
    public void MarkInactive(int slot) =>
        Interlocked.CompareExchange(ref At(slot).State, (int)BackendSlotState.Assigned, (int)BackendSlotState.Active);

    /// <summary>The slot's state. Bounds-checked; a value that is no <see cref="BackendSlotState"/> (garbage over the
    /// slot) throws <see cref="ShmemCorruptException"/> naming the slot: the supervisor then does a full restart.</summary>
    public BackendSlotState StateOf(int slot)
    {
        int state = Volatile.Read(ref At(slot).State);
        if (!IsDefined(state))
            throw new ShmemCorruptException($"{StructureName}: slot {slot} has state {state}, which is not a slot state");
        return (BackendSlotState)state;
    }

    /// <summary>The pid the backend recorded in its slot (0 before it marked itself active). Bounds-checked; never
    /// throws for what the slot holds (garbage is returned as is: the caller must not signal it without its own proof).</summary>
    public int PidOf(int slot) => Volatile.Read(ref At(slot).Pid);

    /// <summary>Postmaster: hand a parked pool member its work, then wake it (at once, or later with
    /// <see cref="WakePooled"/> when <paramref name="wake"/> is false).</summary>
    public void PostAssignment(int slot, PoolAssignment a, int restarts = 0, bool wake = true)
    {
        ref var s = ref At(slot);
        s.Restarts = restarts;
        s.Pooled = 0;
        s.Generation = a.Generation;
        s.StartedAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        ClearSession(ref s);
        WriteText(ref s, a.Name, a.Entry, a.Argument);
        Volatile.Write(ref s.AttachedGeneration, a.Generation); // the member is attached and takes it
        Volatile.Write(ref s.PoolWord, PoolAssigned);
        if (wake)
            WakePooled(slot);
    }

    /// <summary>Backend (pool member): wait until the postmaster posts work, or <paramref name="cancel"/> fires.
    /// Returns the assignment, or null when cancelled.</summary>
    public PoolAssignment? WaitForAssignment(int slot, CancellationToken cancel)
    {
        ref var s = ref At(slot);
        cancel.Register(static () => { }).Dispose(); // pays the first-call cost of Dispose now, not after the wake-up
        using (cancel.Register(() => WakePooled(slot))) // SIGTERM wakes the futex at once
        {
            while (Volatile.Read(ref s.PoolWord) == PoolIdle)
            {
                if (cancel.IsCancellationRequested)
                    return null;
                Locks.Futex.Wait(ref s.PoolWord, PoolIdle, Locks.Deadline.After(PoolRecheck));
            }
        }
        int word = Volatile.Read(ref s.PoolWord);
        if (word != PoolAssigned)
            throw new ShmemCorruptException($"{StructureName}: slot {slot} has pool word {word} where work was expected ({PoolAssigned})");
        return new PoolAssignment(ReadText(ref s, 64, MaxNameBytes), ReadText(ref s, 128, MaxEntryBytes),
            ReadText(ref s, 384, MaxArgumentBytes), Volatile.Read(ref s.Generation));
    }

    /// <summary>Wakes a parked pool member: to take the work posted in its slot, or (without work, at shutdown) to
    /// see cancellation and exit.</summary>
    public void WakePooled(int slot) => Locks.Futex.Wake(ref At(slot).PoolWord, 1);

    public BackendSlotInfo Read(int slot)
    {
        ref var s = ref At(slot);
        return new BackendSlotInfo(slot, (BackendSlotState)Volatile.Read(ref s.State), Volatile.Read(ref s.Pid), s.Generation,
            ReadText(ref s, 64, MaxNameBytes), ReadText(ref s, 128, MaxEntryBytes), s.StartedAtUnixMs, s.Pooled != 0, s.Restarts,
            Volatile.Read(ref s.AttachedGeneration), ReadSession(ref s));
    }

    // The session word (SessionStartedAtUnixMs) of a connection backend's slot: 0 free, a time in a session, or one of
    // these claims, taken with a compare-and-swap from 0, so that the backend (accepting a connection itself) and the
    // acceptor (handing one over) never both take a free backend.
    public const long SessionClaimedByBackend = -1;
    public const long SessionClaimedForHandOff = -2;
    public const long SessionLeaving = -3;

    /// <summary>The connection backend in <paramref name="slot"/> is not free: in a session, claimed, or leaving.</summary>
    public bool InSession(int slot) => Volatile.Read(ref At(slot).SessionStartedAtUnixMs) != 0;

    /// <summary>Takes a free connection backend's session word with <paramref name="claim"/>
    /// (<see cref="SessionClaimedByBackend"/> or <see cref="SessionClaimedForHandOff"/>); false when it was not free.</summary>
    public bool TryClaimSession(int slot, long claim) =>
        Interlocked.CompareExchange(ref At(slot).SessionStartedAtUnixMs, claim, 0) == 0;

    /// <summary>Backend: gives back its claim (the accept found nothing).</summary>
    public void ReleaseSessionClaim(int slot) =>
        Interlocked.CompareExchange(ref At(slot).SessionStartedAtUnixMs, 0, SessionClaimedByBackend);

    /// <summary>Connection backend, for its own slot: it serves session <paramref name="id"/>, its
    /// <paramref name="count"/>th, from <paramref name="client"/>.</summary>
    public void SetSession(int slot, long id, long startedAtUnixMs, int count, string client, int open = 1)
    {
        ref var s = ref At(slot);
        s.SessionId = id;
        Volatile.Write(ref s.SessionsOpen, open);
        Volatile.Write(ref s.SessionCount, count);
        fixed (Slot* p = &s)
            Put((byte*)p + SessionClientOffset, MaxClientBytes, client.Length > MaxClientBytes ? client[..MaxClientBytes] : client);
        Volatile.Write(ref s.SessionStartedAtUnixMs, Math.Max(1, startedAtUnixMs)); // last: it says "in session"
    }

    /// <summary>Connection backend serving several sessions at once, for its own slot: <paramref name="open"/> are in
    /// progress (the newest one's fields stay).</summary>
    public void SetSessionsOpen(int slot, int open) => Volatile.Write(ref At(slot).SessionsOpen, open);

    /// <summary>Connection backend, for its own slot: the session ended; it waits for the next one (count kept), or,
    /// when <paramref name="leaving"/>, it exits (nobody may hand it another).</summary>
    public void EndSession(int slot, bool leaving = false)
    {
        ref var s = ref At(slot);
        Volatile.Write(ref s.SessionStartedAtUnixMs, leaving ? SessionLeaving : 0);
        Volatile.Write(ref s.SessionsOpen, 0);
        fixed (Slot* p = &s)
            Put((byte*)p + SessionClientOffset, MaxClientBytes, "");
    }

    private static void ClearSession(ref Slot s)
    {
        s.SessionCount = 0;
        s.SessionId = 0;
        s.SessionStartedAtUnixMs = 0;
        s.SessionsOpen = 0;
        s.SessionClient[0] = 0;
    }

    private static SessionInfo ReadSession(ref Slot s) =>
        new(ReadText(ref s, SessionClientOffset, MaxClientBytes), Math.Max(0, s.SessionStartedAtUnixMs), s.SessionId, Volatile.Read(ref s.SessionCount),
            Math.Max(0, Volatile.Read(ref s.SessionsOpen)));

    /// <summary>Checks that texts fit the slot; the caller reports the error before anything is started.</summary>
    public static string? Validate(string name, string entry, string argument)
    {
        if (Utf8Text.GetByteCount(name) > MaxNameBytes)
            return $"worker name \"{name}\" is too long (at most {MaxNameBytes} bytes)";
        if (Utf8Text.GetByteCount(entry) > MaxEntryBytes)
            return $"worker entry \"{entry}\" is too long (at most {MaxEntryBytes} bytes)";
        if (Utf8Text.GetByteCount(argument) > MaxArgumentBytes)
            return $"worker argument is too long ({Utf8Text.GetByteCount(argument)} bytes; at most {MaxArgumentBytes})";
        return null;
    }

    private static void WriteText(ref Slot s, string name, string entry, string argument)
    {
        if (Validate(name, entry, argument) is { } error)
            throw new ArgumentException(error);
        fixed (Slot* p = &s)
        {
            Put((byte*)p + 64, MaxNameBytes, name);
            Put((byte*)p + 128, MaxEntryBytes, entry);
            Put((byte*)p + 384, MaxArgumentBytes, argument);
        }
    }

    private static void Put(byte* dst, int max, string text)
    {
        var span = new Span<byte>(dst, max + 1);
        span.Clear();
        Utf8Text.GetBytes(text, span);
    }

    private static string ReadText(ref Slot s, int offset, int max)
    {
        fixed (Slot* p = &s)
        {
            var span = new ReadOnlySpan<byte>((byte*)p + offset, max + 1);
            int len = span.IndexOf((byte)0);
            return Utf8Text.GetString(span[..(len < 0 ? max : len)]);
        }
    }
}
