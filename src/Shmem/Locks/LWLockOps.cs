using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Postmaster.Shmem.Locks;

/// <summary>
/// The lock state machine over the 32-bit <see cref="LWLock.State"/> word, with no bookkeeping (that is
/// <see cref="LockOwner"/>'s job).
/// <para><b>Overview.</b> The word encodes
/// <c>[31..22] exclusive waiters | [21] has waiters | [20] exclusive | [19..0] shared holders</c>.
/// Acquire is one CAS when the lock is free; release is one atomic add. A process that cannot get the lock sets
/// "has waiters" (and, for exclusive mode, adds itself to the exclusive-waiter count) in the same CAS that observed
/// the lock busy, then sleeps with FUTEX_WAIT on the word, expecting exactly the value it wrote; any later change
/// makes the kernel refuse to sleep (EAGAIN), so a release between the CAS and the sleep is never lost. A release
/// that leaves the lock in a state where someone could proceed and sees "has waiters" clears the flag and wakes
/// every sleeper (wake-all: simple, and correct even when a waiter has died); each re-checks and either takes the
/// lock or re-sets the flag and sleeps again. Waking costs at most one retry per sleeper per release.</para>
/// <para><b>Spinning.</b> Before its first sleep, a waiter re-checks the word for at most <see cref="SpinBudget"/>
/// (a cross-core futex wake-up costs about 40 µs on the target machines, while most critical sections last well
/// under a microsecond). The spin is bounded in time and happens once per acquire; after a wake-up the waiter
/// retries once and sleeps again. There is no unbounded spinning.</para>
/// <para><b>Fairness.</b> A non-zero exclusive-waiter count blocks new shared acquirers, so a steady stream of
/// readers cannot starve a writer: the shared count drains to zero and the writer gets the lock (taking it
/// decrements the count in the same CAS). Writers can still barge ahead of sleeping writers and readers; as in
/// PostgreSQL, there is no FIFO order.</para>
/// <para><b>Dead processes.</b> A process killed while holding the lock, or while counted as an exclusive waiter,
/// leaves the word wrong for ever (held, or blocking readers). The word cannot say who: the owner records can,
/// which is why <see cref="LockOwner"/> records a lock before trying to take it.</para>
/// </summary>
internal static class LWLockOps
{
    public const int SharedMask = (1 << 20) - 1;
    public const int ExclusiveBit = 1 << 20;
    public const int HasWaitersBit = 1 << 21;
    public const int ExclusiveWaiterShift = 22;
    public const int ExclusiveWaiterUnit = 1 << ExclusiveWaiterShift;
    public const int ExclusiveWaitersMask = unchecked((int)0xFFC0_0000);

    /// <summary>Exclusive waiters beyond this many wait unregistered (still correct; they re-try registering on
    /// every wake-up, and the registered ones already hold readers back).</summary>
    public const int MaxRegisteredExclusiveWaiters = (1 << (32 - ExclusiveWaiterShift)) - 1; // 1023

    /// <summary>Most processes that can hold one lock in shared mode at once; owner tables may not have more
    /// slots than this (PostgreSQL: LW_VAL_EXCLUSIVE > MAX_BACKENDS).</summary>
    public const int MaxSharedHolders = SharedMask;

    private const int SharedBlockers = ExclusiveBit | ExclusiveWaitersMask;

    /// <summary>Longest a waiter spins (re-reading the word) before it announces itself and sleeps.</summary>
    public static readonly TimeSpan SpinBudget = TimeSpan.FromMicroseconds(5);

    /// <summary>Pause instructions (<see cref="CpuPause"/>) between two reads of the word while spinning.</summary>
    private const int SpinIterationsPerCheck = 16;

    private static readonly long s_spinBudgetTicks = (long)(SpinBudget.TotalSeconds * Stopwatch.Frequency);

    /// <summary>One attempt that succeeds only in the common uncontended case; false means "take the slow path",
    /// not "the lock is busy". Exclusive: CAS 0 → exclusive. Shared: an atomic add of one holder, which never fails
    /// against other readers; if the word shows a writer (holding or waiting), the add is undone like a release
    /// (which wakes anyone the transient count held back) and the slow path decides.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryAcquireFast(ref int state, LWLockMode mode)
    {
        if (mode == LWLockMode.Exclusive)
            return Interlocked.CompareExchange(ref state, ExclusiveBit, 0) == 0;
        if ((Interlocked.Add(ref state, 1) & SharedBlockers) == 0)
            return true;
        Release(ref state, LWLockMode.Shared);
        return false;
    }

    /// <summary>Conditional acquire: takes the lock if it is available now, retrying only CAS races with other
    /// acquirers; never sleeps. Shared mode counts as unavailable while a writer waits.</summary>
    public static bool TryAcquire(ref int state, LWLockMode mode)
    {
        while (true)
        {
            int s = Volatile.Read(ref state);
            if (!IsAvailable(s, mode))
                return false;
            int next = mode == LWLockMode.Exclusive ? s | ExclusiveBit : s + 1;
            if (Interlocked.CompareExchange(ref state, next, s) == s)
                return true;
        }
    }

    /// <summary>Waits for the lock until <paramref name="deadline"/>; true when acquired, false on timeout (then
    /// nothing about the lock has changed on our behalf). Futex errors other than EAGAIN/EINTR/ETIMEDOUT throw,
    /// also leaving no trace. <paramref name="spin"/> false skips the spin phase (to measure the sleep path).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static bool AcquireSlow(ref int state, LWLockMode mode, long deadline, bool spin = true) =>
        AcquireSlow(ref state, mode, deadline, spin, ref s_neverAbort);

    private static int s_neverAbort;

    /// <summary><see cref="AcquireSlow(ref int, LWLockMode, long, bool)"/> that also gives up (false, nothing changed on
    /// our behalf) when <paramref name="abort"/> is non-zero after a wake-up: the owner's exit path sets it and wakes
    /// the lock's sleepers.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static bool AcquireSlow(ref int state, LWLockMode mode, long deadline, bool spin, ref int abort)
    {
        bool registered = false; // counted in the exclusive-waiter field (exclusive mode only)
        long spinUntil = spin ? Math.Min(Stopwatch.GetTimestamp() + s_spinBudgetTicks, deadline) : 0;
        try
        {
            while (true)
            {
                int s = Volatile.Read(ref state);
                if (IsAvailable(s, mode))
                {
                    int next = mode == LWLockMode.Exclusive
                        ? (s | ExclusiveBit) - (registered ? ExclusiveWaiterUnit : 0)
                        : s + 1;
                    if (Interlocked.CompareExchange(ref state, next, s) == s)
                    {
                        registered = false; // the CAS consumed the registration
                        return true;
                    }
                    continue;
                }

                if (spinUntil != 0)
                {
                    if (Stopwatch.GetTimestamp() < spinUntil)
                    {
                        CpuPause.Spin(SpinIterationsPerCheck);
                        continue;
                    }
                    spinUntil = 0; // spin once per acquire
                }

                // Busy: announce ourselves in the same CAS that saw it busy, so the releaser cannot miss us.
                int expected = s | HasWaitersBit;
                bool registering = mode == LWLockMode.Exclusive && !registered &&
                                   ExclusiveWaiters(s) < MaxRegisteredExclusiveWaiters;
                if (registering)
                    expected += ExclusiveWaiterUnit;
                if (expected != s)
                {
                    if (Interlocked.CompareExchange(ref state, expected, s) != s)
                        continue;
                    registered |= registering;
                }

                // Returns at once (EAGAIN) if the word moved since the CAS: a release in this window is not lost.
                if (Futex.Wait(ref state, expected, deadline) == FutexWaitResult.TimedOut || Volatile.Read(ref abort) != 0)
                    return false;
            }
        }
        finally
        {
            if (registered)
                CancelExclusiveWait(ref state);
        }
    }

    /// <summary>Releases one hold in <paramref name="mode"/>: one atomic add, plus a wake-up only when someone
    /// sleeps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Release(ref int state, LWLockMode mode)
    {
        int after = Interlocked.Add(ref state, mode == LWLockMode.Exclusive ? -ExclusiveBit : -1);
        if ((after & HasWaitersBit) != 0)
            WakeWaiters(ref state);
    }

    /// <summary>Clears "has waiters" and wakes every sleeper, if the lock now admits someone. If it does not (another
    /// process took it in the meantime), the flag stays and that process's release will wake them.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void WakeWaiters(ref int state)
    {
        while (true)
        {
            int s = Volatile.Read(ref state);
            if ((s & HasWaitersBit) == 0 || !AdmitsSomeone(s))
                return;
            if (Interlocked.CompareExchange(ref state, s & ~HasWaitersBit, s) == s)
            {
                Futex.Wake(ref state, Futex.WakeAllCount);
                return;
            }
        }
    }

    /// <summary>Withdraws an exclusive-waiter registration (timeout or error). Dropping the count to zero may
    /// unblock sleeping readers, so wake them if so.</summary>
    private static void CancelExclusiveWait(ref int state)
    {
        int after = Interlocked.Add(ref state, -ExclusiveWaiterUnit);
        if ((after & HasWaitersBit) != 0)
            WakeWaiters(ref state);
    }

    public static bool IsAvailable(int s, LWLockMode mode) => mode == LWLockMode.Exclusive
        ? (s & (ExclusiveBit | SharedMask)) == 0
        : (s & SharedBlockers) == 0;

    /// <summary>True when some waiter could make progress: not held exclusively, and either free or open to readers.</summary>
    private static bool AdmitsSomeone(int s) =>
        (s & ExclusiveBit) == 0 && ((s & SharedMask) == 0 || (s & ExclusiveWaitersMask) == 0);

    public static int SharedHolders(int s) => s & SharedMask;

    public static int ExclusiveWaiters(int s) => (int)((uint)(s & ExclusiveWaitersMask) >> ExclusiveWaiterShift);
}
