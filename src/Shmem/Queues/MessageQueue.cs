using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.Queues;

/// <summary>What a queue operation came to (PostgreSQL's shm_mq_result, plus a receive-buffer outcome).</summary>
internal enum MessageQueueResult
{
    /// <summary>The message was sent, or received whole.</summary>
    Success = 0,

    /// <summary>Not now: the ring is full (send) or holds no complete message (receive), and the call was nowait or
    /// its timeout passed. Nothing is lost: a partly sent or received message continues with the next call.</summary>
    WouldBlock = 1,

    /// <summary>The peer detached or died, or this view was detached. Final: every later call says the same.</summary>
    Detached = 2,

    /// <summary>Receive into a caller's buffer only: the next message is longer than the buffer. It stays queued;
    /// the length says how large a buffer it needs.</summary>
    BufferTooSmall = 3,
}

/// <summary>A snapshot of a queue's header (<see cref="MessageQueue.State"/>).</summary>
internal readonly record struct MessageQueueState(long BytesWritten, long BytesRead, int Detached, int SenderPid, int ReceiverPid,
    bool SenderSleeping, bool ReceiverSleeping);

/// <summary>
/// A single-producer, single-consumer message queue in shared memory (PostgreSQL's shm_mq): one process sends
/// length-prefixed messages of any size through a byte ring, another receives them whole. This object is one
/// process's view of a queue: the creator lays it out with <see cref="Initialize"/>, others validate it with
/// <see cref="Attach"/>; then one view calls <see cref="SetSender"/> and one (in the same or another process)
/// <see cref="SetReceiver"/>.
/// <para><b>Overview.</b> The ring holds a byte stream; the sender alone advances <c>BytesWritten</c>, the receiver
/// alone advances <c>BytesRead</c> (both 64-bit and only growing; position = count modulo the ring size), so
/// <c>BytesWritten - BytesRead</c> bytes are unread and nobody needs a lock: the sender writes only into the free part
/// and publishes with a full-fence store after the bytes, the receiver reads only the published part and gives it
/// back the same way. A message is an 8-byte length word, then the payload, padded to 8 bytes; every count is a
/// multiple of 8 and so is the ring, so the length word never wraps. A payload longer than the free space (or the
/// whole ring) goes in chunks: the receiver copies each chunk out as it is published and gives the space back, so a
/// message of any size streams through a ring of any size (at least <see cref="MinimumRingSize"/>).</para>
/// <para><b>Wake-ups.</b> A side that finds nothing to do spins briefly, then raises its "sleeping" flag, re-checks
/// the counter, and sleeps on its futex word; the other side, after each publish, looks at that flag and only when it
/// is raised bumps the futex word and wakes it. Publish-then-look against raise-then-look (both full fences) means a
/// wake-up is never lost, and the hot path makes no system call while the peer is awake.</para>
/// <para><b>Peer death.</b> Each side records its pid and start time (<see cref="ProcessStartTime"/>) when it takes its
/// role. A waiting side sleeps at most <see cref="PeerCheckInterval"/> at a time and then looks at /proc for the peer:
/// gone, a zombie or a reused pid means dead; so does an expected peer (<see cref="ExpectPeer"/>) that is dead and
/// never attached. A dead peer is recorded in the header's detached bits, as a clean detach would be, and the
/// operation returns <see cref="MessageQueueResult.Detached"/>. The receiver still gets every message that was
/// published whole before the sender detached or died; a partly written one is dropped.</para>
/// <para><b>Crash semantics.</b> No shared lock is ever taken, and a process dying at any instruction leaves only
/// counters it alone writes, so a process killed mid-message needs nothing from the supervisor beyond its ordinary
/// reconcile (the queue's memory is a DSM segment or main-segment space like any other). The survivor sees
/// <see cref="MessageQueueResult.Detached"/> within about <see cref="PeerCheckInterval"/>.</para>
/// <para><b>Threads.</b> One thread sends at a time and one receives at a time: each side is serialised by a
/// process-local gate. <see cref="Detach"/> may come from any thread (an on-detach callback of the segment): it wakes
/// the waits in progress and returns only when no operation is inside the queue's memory any more, so the memory may
/// be unmapped right after it.</para>
/// </summary>
internal sealed unsafe partial class MessageQueue
{
    public const string StructureName = "shared message queue";

    /// <summary>The smallest ring (bytes): one cache line.</summary>
    public const long MinimumRingSize = MessageQueueHeader.LineSize;

    /// <summary>The largest message (bytes): what a managed array can hold.</summary>
    public const int MaxMessageSize = 0x7FFF_FFC7; // Array.MaxLength

    /// <summary>Alignment of the length word, of every chunk and of the ring size (PostgreSQL's MAXALIGN).</summary>
    internal const int Alignment = 8;

    /// <summary>Bytes of the length word in front of every message.</summary>
    internal const int LengthWordSize = sizeof(long);

    private const int SenderRole = 1;
    private const int ReceiverRole = 2;

    private readonly MessageQueueHeader* _h;
    private readonly byte* _ring;
    private readonly long _ringSize;
    private readonly long _chunk; // most bytes copied before a publish, so the peer works on a message while it streams
    private readonly object _sendGate = new();
    private readonly object _receiveGate = new();
    private int _roles;              // SenderRole | ReceiverRole; changed under the gate of the role
    private int _detachRequested;    // 0/1: Detach has begun (first caller does the shared part)
    private volatile bool _detaching; // read by waits in progress; set before the wake-up in Detach
    private bool _detached;          // no operation may touch the memory any more; written under both gates
    private ExpectedPeer? _expected; // ExpectPeer's process; replaced whole, read with Volatile.Read

    /// <summary>Byte counts beyond this are refused as damaged (a real queue needs centuries to get there): the
    /// positions they give can never overflow into a negative remainder.</summary>
    private const long MaxByteCount = 1L << 62;

    private MessageQueue(ShmemRegion region)
    {
        _h = (MessageQueueHeader*)region.Base;
        _ring = region.Base + MessageQueueHeader.Size;
        _ringSize = AlignDown(region.Size - MessageQueueHeader.Size); // the validated value, not a second read
        _chunk = Math.Max(Alignment, AlignDown(_ringSize / 4));
    }

    /// <summary>Bytes of the ring, where messages stream through.</summary>
    public long RingSize => _ringSize;

    /// <summary>True once <see cref="Detach"/> has run on this view.</summary>
    public bool IsDetached => _detaching;

    /// <summary>True when this view is the queue's sender.</summary>
    public bool IsSender => (Volatile.Read(ref _roles) & SenderRole) != 0;

    /// <summary>True when this view is the queue's receiver.</summary>
    public bool IsReceiver => (Volatile.Read(ref _roles) & ReceiverRole) != 0;

    /// <summary>The region size a queue with a ring of <paramref name="ringSize"/> bytes needs (header included; the
    /// ring size rounded up to 8).</summary>
    public static long RequiredSize(long ringSize)
    {
        if (ringSize < MinimumRingSize)
            throw new ArgumentOutOfRangeException(nameof(ringSize), ringSize,
                $"a shared message queue needs a ring of at least {MinimumRingSize} bytes");
        return Layout.ShmemSize.Add(MessageQueueHeader.Size, Layout.ShmemSize.AlignUp(ringSize, Alignment));
    }

    /// <summary>Lays out a new, empty queue over the whole of <paramref name="region"/> (the ring gets what the header
    /// leaves, rounded down to 8 bytes). Creator only, before any other process can see the region; the magic number
    /// is written last.</summary>
    public static MessageQueue Initialize(ShmemRegion region)
    {
        CheckPlacement(region);
        long ring = AlignDown(region.Size - MessageQueueHeader.Size);
        if (ring < MinimumRingSize)
            throw new ArgumentException(
                $"a shared message queue needs at least {RequiredSize(MinimumRingSize)} bytes, the region has {region.Size}", nameof(region));
        ref var h = ref region.Ref<MessageQueueHeader>(0);
        h = default;
        h.LayoutVersion = MessageQueueHeader.CurrentLayoutVersion;
        h.TotalSize = region.Size;
        h.RingSize = ring;
        h.RingOffset = MessageQueueHeader.Size;
        Volatile.Write(ref h.Magic, MessageQueueHeader.ExpectedMagic);
        return new MessageQueue(region);
    }

    /// <summary>A view of the queue another process (or this one) laid out over <paramref name="region"/>, validated
    /// first: <see cref="ShmemCorruptException"/> when the header does not describe the region.</summary>
    public static MessageQueue Attach(ShmemRegion region)
    {
        CheckPlacement(region);
        if (Validate(region) is { } problem)
            throw new ShmemCorruptException($"{StructureName} is corrupt", problem);
        return new MessageQueue(region);
    }

    /// <summary>The header's checks: room, magic, layout version, total size equal to the region's, the ring where
    /// and as large as the size implies, known detached bits, counters in order. Never throws; null when valid.</summary>
    public static string? Validate(ShmemRegion region)
    {
        if (region.Size < MessageQueueHeader.Size)
            return Errors.ShmemProblem.TooSmall(StructureName, region.Size, MessageQueueHeader.Size);
        ref var h = ref region.Ref<MessageQueueHeader>(0);
        if (Errors.ShmemProblem.Header(StructureName, region.Size, MessageQueueHeader.Size, Volatile.Read(ref h.Magic),
                MessageQueueHeader.ExpectedMagic, h.LayoutVersion, MessageQueueHeader.CurrentLayoutVersion) is { } problem)
            return problem;
        if (h.TotalSize != region.Size)
            return $"{StructureName}: total size {h.TotalSize} does not match the region of {region.Size} bytes";
        long ring = AlignDown(region.Size - MessageQueueHeader.Size);
        if (h.RingOffset != MessageQueueHeader.Size || h.RingSize != ring || ring < MinimumRingSize)
            return $"{StructureName}: ring of {h.RingSize} bytes at offset {h.RingOffset} does not fit a region of {region.Size} bytes " +
                   $"(expected {ring} bytes at offset {MessageQueueHeader.Size})";
        const int known = MessageQueueHeader.SenderDetached | MessageQueueHeader.ReceiverDetached |
                          MessageQueueHeader.SenderDied | MessageQueueHeader.ReceiverDied;
        int detached = Volatile.Read(ref h.Detached);
        if ((detached & ~known) != 0)
            return $"{StructureName}: unknown detached bits 0x{detached:X8}";
        long read = Volatile.Read(ref h.BytesRead); // read first: then the written count can only be ahead of it
        long written = Volatile.Read(ref h.BytesWritten);
        if (read < 0 || written < read || read % Alignment != 0 || written % Alignment != 0 || written > MaxByteCount
            || written - read > ring)
            return $"{StructureName}: byte counts written {written} and read {read} are out of order";
        return null;
    }

    /// <summary>
    /// Makes this process the queue's sender (PostgreSQL's shm_mq_set_sender): records its pid and start time in the
    /// header. A queue has one sender for its whole life: when another process (or another view) already is,
    /// <see cref="ShmemException"/> <c>shared message queue already has a sender</c>, naming it.
    /// </summary>
    public void SetSender()
    {
        lock (_sendGate)
        {
            ThrowIfDetached();
            Claim(ref _h->SenderPid, ref _h->SenderStartTicks, "sender");
            _written = _publishedWritten = Volatile.Read(ref _h->BytesWritten);
            _readSeen = Volatile.Read(ref _h->BytesRead);
            Interlocked.Or(ref _roles, SenderRole); // atomic: the other role may be taken on another thread meanwhile
        }
    }

    /// <summary>Makes this process the queue's receiver (PostgreSQL's shm_mq_set_receiver); one per queue, as for
    /// <see cref="SetSender"/> (<c>shared message queue already has a receiver</c>).</summary>
    public void SetReceiver()
    {
        lock (_receiveGate)
        {
            ThrowIfDetached();
            Claim(ref _h->ReceiverPid, ref _h->ReceiverStartTicks, "receiver");
            _read = _publishedRead = Volatile.Read(ref _h->BytesRead);
            _writtenSeen = Volatile.Read(ref _h->BytesWritten);
            Interlocked.Or(ref _roles, ReceiverRole);
        }
    }

    /// <summary>
    /// The process expected to become the peer (PostgreSQL's shm_mq_set_handle for a background worker): a dynamic
    /// worker started to send or receive, which might die before it attaches. While the peer's role is not taken, a
    /// wait also ends with <see cref="MessageQueueResult.Detached"/> once process <paramref name="pid"/> is dead (gone,
    /// a zombie, or its pid reused since this call). Its identity is read now: if it is already dead, it counts as
    /// dead from the start.
    /// </summary>
    public void ExpectPeer(int pid)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pid);
        bool known = ProcessStartTime.TryRead(pid, out char state, out long ticks) && state is not ('Z' or 'X');
        Volatile.Write(ref _expected, new ExpectedPeer(pid, known ? ticks : 0, Gone: !known));
    }

    /// <summary>
    /// Detaches this view (PostgreSQL's shm_mq_detach). If it holds a role, the queue is marked detached by it and the
    /// peer is woken: its waits end with <see cref="MessageQueueResult.Detached"/> (a receiver first gets the messages
    /// already complete in the ring). Waits of this process in progress end the same way; this returns once none is
    /// inside the queue's memory any more. Idempotent; every later operation of this view returns Detached.
    /// </summary>
    public void Detach()
    {
        if (Interlocked.Exchange(ref _detachRequested, 1) == 0)
        {
            _detaching = true;
            int roles = Volatile.Read(ref _roles);
            int bits = ((roles & SenderRole) != 0 ? MessageQueueHeader.SenderDetached : 0) |
                       ((roles & ReceiverRole) != 0 ? MessageQueueHeader.ReceiverDetached : 0);
            if (bits != 0)
                Interlocked.Or(ref _h->Detached, bits);
            WakeBoth(); // the peer, and any wait of this process (it re-checks _detaching)
        }
        lock (_sendGate)
        {
            lock (_receiveGate)
            {
                // A role taken while the first part ran (SetSender between its claim and its role bit) is marked too:
                // with both gates held no role can change any more.
                int late = Volatile.Read(ref _roles);
                int lateBits = ((late & SenderRole) != 0 ? MessageQueueHeader.SenderDetached : 0) |
                               ((late & ReceiverRole) != 0 ? MessageQueueHeader.ReceiverDetached : 0);
                if (!_detached && lateBits != 0 && (Volatile.Read(ref _h->Detached) & lateBits) != lateBits)
                {
                    Interlocked.Or(ref _h->Detached, lateBits);
                    WakeBoth();
                }
                _detached = true;
            }
        }
    }

    /// <summary>The header's counters and flags now: a racy snapshot for tests and diagnostics. Not after
    /// <see cref="Detach"/> (the memory may be gone).</summary>
    public MessageQueueState State
    {
        get
        {
            ThrowIfDetached();
            return new MessageQueueState(Volatile.Read(ref _h->BytesWritten), Volatile.Read(ref _h->BytesRead),
                Volatile.Read(ref _h->Detached), Volatile.Read(ref _h->SenderPid), Volatile.Read(ref _h->ReceiverPid),
                Volatile.Read(ref _h->SenderSleeping) != 0, Volatile.Read(ref _h->ReceiverSleeping) != 0);
        }
    }

    /// <summary>"shared message queue (ring of N bytes)".</summary>
    public override string ToString() => $"{StructureName} (ring of {_ringSize} bytes)";

    private void Claim(ref int pidField, ref long ticksField, string role)
    {
        int roleBit = role == "sender" ? SenderRole : ReceiverRole;
        if ((_roles & roleBit) != 0)
            throw new InvalidOperationException($"this process is already the {role} of the {StructureName}");
        int pid = ProcessControl.CurrentPid;
        long ticks = ProcessStartTime.Self;
        int holder = Interlocked.CompareExchange(ref pidField, pid, 0);
        if (holder != 0)
            throw new ShmemException($"{StructureName} already has a {role}",
                holder == pid ? $"This process ({pid}) attached as its {role} through another handle."
                              : $"Process {holder} attached as its {role}.",
                $"A {StructureName} has one {role} for its whole life; create another queue for another {role}.");
        Volatile.Write(ref ticksField, ticks); // a peer that reads 0 meanwhile checks the pid alone
    }

    private void ThrowIfDetached()
    {
        if (_detaching)
            throw new InvalidOperationException($"the {StructureName} is detached");
    }

    private void RequireRole(int role)
    {
        if ((_roles & role) == 0)
            throw new InvalidOperationException(role == SenderRole
                ? $"this process is not the sender of the {StructureName} (call SetSender first)"
                : $"this process is not the receiver of the {StructureName} (call SetReceiver first)");
    }

    private static void CheckPlacement(ShmemRegion region)
    {
        if (region.IsNull)
            throw new ArgumentException($"a {StructureName} needs a shared memory region", nameof(region));
        if (((nint)region.Base & (Alignment - 1)) != 0)
            throw new ArgumentException($"a {StructureName} must start at an address aligned to {Alignment} bytes", nameof(region));
    }

    /// <summary>The process <see cref="ExpectPeer"/> named, with its start time then (0 when it was already dead).</summary>
    private sealed record ExpectedPeer(int Pid, long StartTicks, bool Gone);

    private static long AlignDown(long value) => value & ~(long)(Alignment - 1);

    private static long AlignUp(long value) => (value + Alignment - 1) & ~(long)(Alignment - 1);
}
