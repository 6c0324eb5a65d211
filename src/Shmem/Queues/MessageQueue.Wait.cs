using System.Diagnostics;
using Postmaster.Shmem.Locks;
using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.Queues;

/// <summary>Waiting and waking for <see cref="MessageQueue"/>: the spin, the sleeping flag and the futex, and the
/// periodic look at the peer's liveness.</summary>
internal sealed unsafe partial class MessageQueue
{
    /// <summary>The longest single sleep: a waiting side looks at the peer's liveness at least this often, which bounds
    /// how long it takes to notice a peer that died (plus reading /proc/PID/stat).</summary>
    public static TimeSpan PeerCheckInterval => TimeSpan.FromMilliseconds(PeerCheckMilliseconds);

    private const int PeerCheckMilliseconds = 20;

    /// <summary>How long a side spins on the peer's counter before it sleeps: a peer that is awake usually answers
    /// within a few microseconds, far sooner than a futex sleep and wake-up take (tens of microseconds across cores).</summary>
    private const long SpinNanoseconds = 20_000;

    /// <summary>CPU pause instructions between two looks at the counter while spinning.</summary>
    private const int SpinBatch = 16;

    // Computed where used (no static constructor: this type may load into any backend).
    private static long PeerCheckTicks => Stopwatch.Frequency * PeerCheckMilliseconds / 1000;
    private static long SpinTicks => Math.Max(1, Stopwatch.Frequency / 1_000_000 * SpinNanoseconds / 1000);

    private long _senderPeerCheck;   // when the sender last looked at the receiver's liveness (Stopwatch ticks)
    private long _receiverPeerCheck; // when the receiver last looked at the sender's liveness

    private enum WaitOutcome
    {
        Retry,    // re-check the queue: something changed, or a slice passed (spurious wake-ups are possible)
        TimedOut, // the operation's deadline passed
    }

    /// <summary>One blocking operation's wait parameters; the cancellation registration is made on its first sleep.</summary>
    private struct WaitState(long deadline, CancellationToken token, bool receiver) : IDisposable
    {
        public readonly long Deadline = deadline;
        public readonly CancellationToken Token = token;
        public readonly bool Receiver = receiver;
        public bool SpinAllowed = true;
        private CancellationTokenRegistration _registration;
        private bool _registered;

        /// <summary>Cancellation wakes this side's futex (the sleep then sees the token and throws).</summary>
        public void Register(MessageQueue queue)
        {
            if (_registered || !Token.CanBeCanceled)
                return;
            _registered = true;
            _registration = Receiver
                ? Token.UnsafeRegister(static q => ((MessageQueue)q!).WakeOwnWait(receiver: true), queue)
                : Token.UnsafeRegister(static q => ((MessageQueue)q!).WakeOwnWait(receiver: false), queue);
        }

        /// <summary>Removes the registration; waits for a callback that is running, so none touches the memory later.</summary>
        public void Dispose()
        {
            if (_registered)
                _registration.Dispose();
        }
    }

    /// <summary>
    /// One wait of this side for <paramref name="watched"/> (the peer's counter) to move from <paramref name="seen"/>:
    /// first a short spin, then the sleeping flag, a re-check, and a futex sleep of at most
    /// <see cref="PeerCheckInterval"/> (or until the deadline). Returns <see cref="WaitOutcome.Retry"/> whatever woke it
    /// (after a slice it looks at the peer's liveness, which may mark the queue detached), or
    /// <see cref="WaitOutcome.TimedOut"/> once the deadline has passed. Cancellation throws.
    /// </summary>
    private WaitOutcome Sleep(ref WaitState wait, ref long watched, long seen)
    {
        ref int futex = ref wait.Receiver ? ref _h->ReceiverFutex : ref _h->SenderFutex;
        ref int sleeping = ref wait.Receiver ? ref _h->ReceiverSleeping : ref _h->SenderSleeping;
        if (wait.SpinAllowed)
        {
            wait.SpinAllowed = false;
            long end = Stopwatch.GetTimestamp() + SpinTicks;
            do
            {
                CpuPause.Spin(SpinBatch);
                if (Volatile.Read(ref watched) != seen || Volatile.Read(ref _h->Detached) != 0 || _detaching)
                {
                    wait.SpinAllowed = true; // the peer is awake: spin again next time
                    return WaitOutcome.Retry;
                }
            } while (Stopwatch.GetTimestamp() < end);
        }
        wait.Token.ThrowIfCancellationRequested();
        wait.Register(this);
        int sequence = Volatile.Read(ref futex);
        Interlocked.Exchange(ref sleeping, 1); // a full fence: then the re-check below sees any publish before it
        if (Volatile.Read(ref watched) != seen || Volatile.Read(ref _h->Detached) != 0 || _detaching ||
            wait.Token.IsCancellationRequested)
        {
            Volatile.Write(ref sleeping, 0);
            wait.Token.ThrowIfCancellationRequested();
            return WaitOutcome.Retry;
        }
        long slice = Stopwatch.GetTimestamp() + PeerCheckTicks;
        var result = Futex.Wait(ref futex, sequence, Math.Min(slice, wait.Deadline));
        Volatile.Write(ref sleeping, 0);
        wait.Token.ThrowIfCancellationRequested();
        if (result == FutexWaitResult.TimedOut)
        {
            if (wait.Deadline != Deadline.Infinite && Stopwatch.GetTimestamp() >= wait.Deadline)
            {
                // Short timeouts in a loop must still notice a dead peer: look (at most once per slice) before
                // reporting the timeout; a death found here marks the queue detached, which the caller sees.
                return CheckPeer(ref wait, force: false) ? WaitOutcome.Retry : WaitOutcome.TimedOut;
            }
            CheckPeer(ref wait, force: true); // a whole slice without a word from the peer: is it still there?
            return WaitOutcome.Retry;
        }
        wait.SpinAllowed = true;
        CheckPeer(ref wait, force: false);
        return WaitOutcome.Retry;
    }

    /// <summary>
    /// Looks at the peer's liveness (at most once per <see cref="PeerCheckInterval"/> unless <paramref name="force"/>);
    /// when it is dead, records that in the header's detached bits (so both sides agree from now on) and returns true.
    /// </summary>
    private bool CheckPeer(ref WaitState wait, bool force)
    {
        ref long last = ref wait.Receiver ? ref _receiverPeerCheck : ref _senderPeerCheck;
        long now = Stopwatch.GetTimestamp();
        if (!force && last != 0 && now - last < PeerCheckTicks)
            return false;
        last = now;
        if (!PeerGone(wait.Receiver))
            return false;
        Interlocked.Or(ref _h->Detached, wait.Receiver ? MessageQueueHeader.SenderDied : MessageQueueHeader.ReceiverDied);
        return true;
    }

    /// <summary>
    /// True when the peer of this side is definitely gone: it took its role and that process is dead now, or it has
    /// not taken it and the expected peer (<see cref="ExpectPeer"/>) is dead. Like PostgreSQL's
    /// shm_mq_counterparty_gone, the expected process is looked at before the attach record is read again, so a peer
    /// that attached and died in between is judged by its own record.
    /// </summary>
    private bool PeerGone(bool receiverSide)
    {
        ref int pidField = ref receiverSide ? ref _h->SenderPid : ref _h->ReceiverPid;
        ref long ticksField = ref receiverSide ? ref _h->SenderStartTicks : ref _h->ReceiverStartTicks;
        int pid = Volatile.Read(ref pidField);
        if (pid == 0)
        {
            var expected = Volatile.Read(ref _expected);
            if (expected is null)
                return false; // nobody to watch: wait for an attach (or the caller's timeout)
            if (!expected.Gone && ProcessStartTime.IsAlive(expected.Pid, expected.StartTicks))
                return false;
            pid = Volatile.Read(ref pidField);
            if (pid == 0)
                return true;
        }
        long ticks = Volatile.Read(ref ticksField);
        if (pid == ProcessControl.CurrentPid && (ticks == 0 || ticks == ProcessStartTime.Self))
            return false; // both ends in this process (tests, or threads of one worker)
        return !ProcessStartTime.IsAlive(pid, ticks);
    }

    /// <summary>Bumps <paramref name="futex"/> and wakes the one side that sleeps on it.</summary>
    private static void Wake(ref int futex)
    {
        Interlocked.Increment(ref futex);
        Futex.Wake(ref futex, 1);
    }

    /// <summary>Wakes both sides (detach): the peer's waits and this process's own.</summary>
    private void WakeBoth()
    {
        Interlocked.Increment(ref _h->ReceiverFutex);
        Futex.Wake(ref _h->ReceiverFutex, Futex.WakeAllCount);
        Interlocked.Increment(ref _h->SenderFutex);
        Futex.Wake(ref _h->SenderFutex, Futex.WakeAllCount);
    }

    /// <summary>A cancellation callback: wakes this process's wait on one side (it then sees the token).</summary>
    private void WakeOwnWait(bool receiver)
    {
        if (receiver)
            Wake(ref _h->ReceiverFutex);
        else
            Wake(ref _h->SenderFutex);
    }
}
