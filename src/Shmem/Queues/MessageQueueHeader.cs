using System.Runtime.InteropServices;

namespace Postmaster.Shmem.Queues;

/// <summary>
/// The first <see cref="Size"/> bytes of a shared message queue (<see cref="MessageQueue"/>); the byte ring follows at
/// offset <see cref="Size"/> and runs to the end of the queue's region (rounded down to 8 bytes). ABI: any change
/// bumps <see cref="CurrentLayoutVersion"/>; <c>MessageQueueLayoutTests</c> pins every offset.
/// <para><b>Lines.</b> Six cache lines, each written by one side only in the steady state, so that the hot words of
/// the sender and the receiver never share a line: (0) identity, immutable after initialisation except for the two
/// attach records; (1) the detached bits; (2) the sender's byte count; (3) the receiver's byte count; (4) the
/// receiver's wait line; (5) the sender's wait line.</para>
/// <para><b>Protected by:</b> nothing (no lock is ever taken: see <see cref="MessageQueue"/>). Each field has one
/// writer, or is changed only by atomic operations, as its comment says. Offsets only, never addresses.</para>
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct MessageQueueHeader
{
    public const int Size = 6 * LineSize;
    public const int LineSize = 64;
    public const uint ExpectedMagic = 0x514D_4D50; // "PMMQ" little-endian
    public const uint CurrentLayoutVersion = 1;

    /// <summary>Bits of <see cref="Detached"/>: who ended the queue. Any bit set means the queue is detached.</summary>
    public const int SenderDetached = 1;
    public const int ReceiverDetached = 2;
    public const int SenderDied = 4;     // the receiver found the sender dead (or never started) and said so
    public const int ReceiverDied = 8;   // the sender found the receiver dead (or never started) and said so

    // Line 0: identity. Written by the creator before any other process can see the queue, then read only; the attach
    // records are claimed once each (compare-exchange of the pid from 0), never cleared.
    [FieldOffset(0)] public uint Magic;
    [FieldOffset(4)] public uint LayoutVersion;
    [FieldOffset(8)] public long TotalSize;            // bytes of the queue's region, header included
    [FieldOffset(16)] public long RingSize;            // bytes of the ring: (TotalSize - Size) rounded down to 8
    [FieldOffset(24)] public long RingOffset;          // always Size
    [FieldOffset(32)] public int SenderPid;            // 0 = no sender yet; claimed by compare-exchange
    [FieldOffset(40)] public long SenderStartTicks;    // /proc/PID/stat field 22 of SenderPid; 0 = not written yet
    [FieldOffset(48)] public int ReceiverPid;          // 0 = no receiver yet; claimed by compare-exchange
    [FieldOffset(56)] public long ReceiverStartTicks;  // /proc/PID/stat field 22 of ReceiverPid; 0 = not written yet

    // Line 1: set by either side (Interlocked.Or), never cleared.
    [FieldOffset(64)] public int Detached;             // 0 = live; bits SenderDetached | ReceiverDetached | *Died

    // Line 2: the sender's.
    [FieldOffset(128)] public long BytesWritten;       // bytes the sender has published, a multiple of 8; only grows

    // Line 3: the receiver's.
    [FieldOffset(192)] public long BytesRead;          // bytes the receiver has consumed, a multiple of 8; only grows

    // Line 4: the receiver's wait line. Sleeping is written by the receiver, the futex word bumped by whoever wakes it.
    [FieldOffset(256)] public int ReceiverSleeping;    // 1 while the receiver is about to sleep or sleeps
    [FieldOffset(260)] public int ReceiverFutex;       // sequence number the receiver sleeps on (wraps)

    // Line 5: the sender's wait line, likewise.
    [FieldOffset(320)] public int SenderSleeping;
    [FieldOffset(324)] public int SenderFutex;
}
