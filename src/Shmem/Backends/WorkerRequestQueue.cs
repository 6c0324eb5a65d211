using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Text;

namespace Postmaster.Shmem.Backends;

internal enum WorkerRequestKind
{
    Spawn = 1,
    Terminate = 2,

    /// <summary>Start a stopped, failed or done static worker again (target = its name).</summary>
    StartWorker = 3,
}

/// <summary>A request as the postmaster reads it.</summary>
internal sealed record WorkerRequest(int Index, WorkerRequestKind Kind, int RequesterPid, string Name, string Entry, string Argument, string Target);

/// <summary>What the postmaster answered: a started backend (pid, slot, generation) or an error.</summary>
internal readonly record struct WorkerRequestResult(bool Ok, int Pid, int Slot, long Generation, string? Error);

/// <summary>
/// Requests from outside the postmaster to start a dynamic worker or terminate one (PostgreSQL's
/// RegisterDynamicBackgroundWorker slots + PMSIGNAL_BACKGROUND_WORKER_CHANGE). Overview: a requester (the CLI, or a
/// backend) claims a free entry with a compare-and-swap (Free → Filling), writes it, publishes it (→ Submitted) and
/// rings the doorbell (a futex a postmaster thread waits on; SIGUSR1 when no thread listens); the postmaster reads
/// submitted entries (→ Processing), acts, writes the result (→ Done or Failed) and wakes the requester's futex; the
/// requester reads the result and frees the entry.
/// No locks: the postmaster never blocks on a requester. Entries whose requester died are freed by the postmaster.
/// </summary>
internal sealed unsafe class WorkerRequestQueue
{
    public const int Free = 0;
    public const int Filling = 1;
    public const int Submitted = 2;
    public const int Processing = 3;
    public const int Done = 4;
    public const int Failed = 5;
    public const int DefaultCapacity = 64;
    private const uint Magic = 0x504D_5251; // "PMRQ"
    private const uint LayoutVersion = 2;
    private const int NameOffset = 64, EntryOffset = 128, ArgumentOffset = 384, TargetOffset = 1408, ErrorOffset = 1472;
    private const int NameMax = 63, EntryMax = 255, ArgumentMax = 1023, TargetMax = 63, ErrorMax = 511;

    [StructLayout(LayoutKind.Explicit, Size = 64)]
    private struct Header
    {
        [FieldOffset(0)] public uint Magic;
        [FieldOffset(4)] public uint LayoutVersion;
        [FieldOffset(8)] public int Capacity;
        [FieldOffset(16)] public long Size;
        [FieldOffset(24)] public int Doorbell;         // futex word: requesters increment it after submitting
        [FieldOffset(28)] public int Listening;        // 1 while a postmaster thread waits on Doorbell
    }

    [StructLayout(LayoutKind.Explicit, Size = EntrySize)]
    private struct Entry
    {
        public const int EntrySize = 2048;
        [FieldOffset(0)] public int State;           // futex word; see the constants
        [FieldOffset(4)] public int Kind;
        [FieldOffset(8)] public int RequesterPid;
        [FieldOffset(12)] public int ResultPid;
        [FieldOffset(16)] public int ResultSlot;
        [FieldOffset(24)] public long ResultGeneration;
    }

    /// <summary>Most entries a queue may declare (a sanity bound for validation).</summary>
    public const int MaxCapacity = 1 << 16;

    /// <summary>Name used in validation results.</summary>
    public const string StructureName = "worker request queue";

    private readonly ShmemRegion _region;
    private readonly int _capacity;

    private WorkerRequestQueue(ShmemRegion region, int capacity)
    {
        _region = region;
        _capacity = capacity;
    }

    public static long RequiredSize(int capacity) => Unsafe.SizeOf<Header>() + (long)capacity * Entry.EntrySize;

    /// <summary>Entries, as validated at attach (immutable afterwards: a corrupt header cannot move the accessors).</summary>
    public int Capacity => _capacity;

    public static WorkerRequestQueue Initialize(ShmemRegion region, int capacity)
    {
        ref var h = ref region.Ref<Header>(0);
        h.Capacity = capacity;
        h.Size = RequiredSize(capacity);
        h.LayoutVersion = LayoutVersion;
        Volatile.Write(ref h.Magic, Magic);
        return new WorkerRequestQueue(region, capacity);
    }

    /// <summary>Validates a queue the postmaster initialised; <see cref="ShmemCorruptException"/> naming the problem.</summary>
    public static WorkerRequestQueue Attach(ShmemRegion region)
    {
        if (ValidateHeader(region) is { } problem)
            throw new ShmemCorruptException(problem);
        return new WorkerRequestQueue(region, region.Ref<Header>(0).Capacity);
    }

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
        if (h.Capacity < 0 || h.Capacity > MaxCapacity)
            return $"{StructureName}: capacity {h.Capacity} is outside 0..{MaxCapacity}";
        if (h.Size != RequiredSize(h.Capacity) || h.Size > region.Size)
            return $"{StructureName}: size {h.Size} does not match {RequiredSize(h.Capacity)} for {h.Capacity} entries " +
                   $"or exceeds the region of {region.Size} bytes";
        if (h.Listening is not (0 or 1))
            return $"{StructureName}: listening flag {h.Listening} is not 0 or 1";
        return null;
    }

    /// <summary>
    /// Checks the queue as the supervisor relies on it: the header (magic, version, capacity as at attach, size) and
    /// every entry's state (one of the six states) and, for submitted or processing ones, its kind. Never throws.
    /// Null when valid, else the first problem.
    /// </summary>
    public string? Validate()
    {
        if (ValidateHeader(_region) is { } problem)
            return problem;
        int declared = _region.Ref<Header>(0).Capacity;
        if (declared != _capacity)
            return $"{StructureName}: capacity {declared} differs from {_capacity}, the capacity at attach";
        for (int i = 0; i < _capacity; i++)
        {
            ref var e = ref At(i);
            int state = Volatile.Read(ref e.State);
            if (state is < Free or > Failed)
                return $"{StructureName}: entry {i} has state {state}, which is not a request state";
            // An unknown request kind is the requester's error (or a newer client), not corrupt memory:
            // TakeSubmitted answers it with an error.
        }
        return null;
    }

    private static bool IsKind(int kind) => kind is (int)WorkerRequestKind.Spawn or (int)WorkerRequestKind.Terminate or (int)WorkerRequestKind.StartWorker;

    private ref Entry At(int i)
    {
        if ((uint)i >= (uint)_capacity)
            throw new ArgumentOutOfRangeException(nameof(i), $"worker request {i} does not exist (there are {_capacity})");
        return ref _region.Ref<Entry>(Unsafe.SizeOf<Header>() + (long)i * Entry.EntrySize);
    }

    /// <summary>Claims an entry and submits it without waking anyone (see <see cref="Post"/>). Returns its index, or
    /// null when every entry is busy.</summary>
    private int? Submit(WorkerRequestKind kind, string name, string entry, string argument, string target)
    {
        for (int i = 0; i < Capacity; i++)
        {
            ref var e = ref At(i);
            if (Interlocked.CompareExchange(ref e.State, Filling, Free) != Free)
                continue;
            e.Kind = (int)kind;
            e.RequesterPid = ProcessControl.CurrentPid;
            e.ResultPid = 0;
            e.ResultSlot = -1;
            e.ResultGeneration = 0;
            Put(i, NameOffset, NameMax, name);
            Put(i, EntryOffset, EntryMax, entry);
            Put(i, ArgumentOffset, ArgumentMax, argument);
            Put(i, TargetOffset, TargetMax, target);
            Put(i, ErrorOffset, ErrorMax, "");
            Volatile.Write(ref e.State, Submitted);
            return i;
        }
        return null;
    }

    /// <summary>
    /// Requester: submits and wakes the postmaster. Returns the entry's index, or null when every entry is busy.
    /// The doorbell wakes a postmaster thread directly; SIGUSR1, which the runtime delivers through its signal thread
    /// and the thread pool (about 0.7 ms later), is sent only when that thread is not listening (for example while
    /// shared memory is being rebuilt), so that the postmaster does not serve the queue twice per request.
    /// </summary>
    public int? Post(WorkerRequestKind kind, string name, string entry, string argument, string target, int postmasterPid)
    {
        if (Submit(kind, name, entry, argument, target) is not int index)
            return null;
        Ring();
        if (Volatile.Read(ref _region.Ref<Header>(0).Listening) == 0)
            ProcessControl.Signal(postmasterPid, Signals.SIGUSR1);
        return index;
    }

    /// <summary>Wakes whoever sleeps on the doorbell.</summary>
    public void Ring()
    {
        ref int bell = ref _region.Ref<Header>(0).Doorbell;
        Interlocked.Increment(ref bell);
        Futex.Wake(ref bell, Futex.WakeAllCount);
    }

    /// <summary>Postmaster: says whether a thread waits on the doorbell (requesters then skip SIGUSR1).</summary>
    public void SetListening(bool listening) => Volatile.Write(ref _region.Ref<Header>(0).Listening, listening ? 1 : 0);

    /// <summary>The doorbell's current value.</summary>
    public int Doorbell => Volatile.Read(ref _region.Ref<Header>(0).Doorbell);

    /// <summary>Postmaster thread: sleeps until the doorbell differs from <paramref name="seen"/> (or the timeout
    /// passes) and returns its value.</summary>
    public int WaitForDoorbell(int seen, TimeSpan timeout)
    {
        ref int bell = ref _region.Ref<Header>(0).Doorbell;
        if (Volatile.Read(ref bell) == seen)
            Futex.Wait(ref bell, seen, Deadline.After(timeout));
        return Volatile.Read(ref bell);
    }

    /// <summary>Requester: waits for the postmaster's answer (null on timeout), then frees the entry.</summary>
    public WorkerRequestResult? WaitForResult(int index, TimeSpan timeout)
    {
        ref var e = ref At(index);
        long deadline = Deadline.After(timeout);
        while (true)
        {
            int s = Volatile.Read(ref e.State);
            if (s is Done or Failed)
            {
                var r = new WorkerRequestResult(s == Done, e.ResultPid, e.ResultSlot, e.ResultGeneration,
                    s == Failed ? Get(index, ErrorOffset, ErrorMax) : null);
                Volatile.Write(ref e.State, Free);
                return r;
            }
            if (Deadline.RemainingNanoseconds(deadline) <= 0)
                return null;
            Futex.Wait(ref e.State, s, deadline);
        }
    }

    /// <summary>Requester: <see cref="WaitForResult"/>, and on timeout withdraws the entry (null).</summary>
    public WorkerRequestResult? WaitOrWithdraw(int index, TimeSpan timeout)
    {
        var result = WaitForResult(index, timeout);
        if (result is null)
            Withdraw(index);
        return result;
    }

    /// <summary>Requester gave up waiting: withdraw the entry if the postmaster has not taken it yet.</summary>
    public bool Withdraw(int index) => Interlocked.CompareExchange(ref At(index).State, Free, Submitted) == Submitted;

    /// <summary>Postmaster: takes every submitted request (Submitted → Processing).</summary>
    public List<WorkerRequest> TakeSubmitted()
    {
        var list = new List<WorkerRequest>();
        for (int i = 0; i < Capacity; i++)
        {
            ref var e = ref At(i);
            if (Interlocked.CompareExchange(ref e.State, Processing, Submitted) != Submitted)
                continue;
            if (!IsKind(e.Kind))
            {
                // Not something a requester of this layout writes: answer it as failed rather than act on it.
                Complete(i, new WorkerRequestResult(false, 0, -1, 0, $"invalid worker request kind {e.Kind}"));
                continue;
            }
            list.Add(new WorkerRequest(i, (WorkerRequestKind)e.Kind, e.RequesterPid, Get(i, NameOffset, NameMax),
                Get(i, EntryOffset, EntryMax), Get(i, ArgumentOffset, ArgumentMax), Get(i, TargetOffset, TargetMax)));
        }
        return list;
    }

    /// <summary>Postmaster: answers a request and wakes its requester.</summary>
    public void Complete(int index, WorkerRequestResult result)
    {
        ref var e = ref At(index);
        e.ResultPid = result.Pid;
        e.ResultSlot = result.Slot;
        e.ResultGeneration = result.Generation;
        Put(index, ErrorOffset, ErrorMax, result.Error ?? "");
        Volatile.Write(ref e.State, result.Ok ? Done : Failed);
        Futex.Wake(ref e.State, Futex.WakeAllCount);
    }

    /// <summary>Postmaster: frees entries whose requester died before it submitted or read the answer. Submitted
    /// entries are left to <see cref="TakeSubmitted"/>: they are served (and then reaped) whoever sent them, and
    /// leaving them out keeps the liveness check (a /proc read) off the request path.</summary>
    public int ReapAbandoned()
    {
        int n = 0;
        for (int i = 0; i < Capacity; i++)
        {
            ref var e = ref At(i);
            int s = Volatile.Read(ref e.State);
            if (s is Done or Failed or Filling && !ProcessControl.IsAlive(e.RequesterPid) &&
                Interlocked.CompareExchange(ref e.State, Free, s) == s)
                n++;
        }
        return n;
    }

    private void Put(int i, int offset, int max, string text)
    {
        var span = _region.Span(Unsafe.SizeOf<Header>() + (long)i * Entry.EntrySize + offset, max + 1);
        span.Clear();
        var bytes = Utf8Text.GetBytes(text);
        bytes.AsSpan(0, Math.Min(bytes.Length, max)).CopyTo(span); // callers validate lengths; never overflow the field
    }

    private string Get(int i, int offset, int max)
    {
        var span = _region.Span(Unsafe.SizeOf<Header>() + (long)i * Entry.EntrySize + offset, max + 1);
        int len = span.IndexOf((byte)0);
        return Utf8Text.GetString(span[..(len < 0 ? max : len)]);
    }
}
