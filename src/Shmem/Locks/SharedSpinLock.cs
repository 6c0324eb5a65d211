using System.Runtime.InteropServices;
using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.Locks;

/// <summary>
/// A spinlock in shared memory for very short critical sections (a few loads and stores; never a syscall, an
/// allocation or another lock inside). Unlike an <see cref="LWLock"/> it has no shared mode, no owner record and no
/// re-entrancy check; unlike PostgreSQL's s_lock it stores the holder's pid in the word, so a holder that died is
/// visible (<see cref="HolderPid"/>), and it never spins for long.
/// <para><b>Algorithm.</b> Test-and-set by CAS (0 → pid). On contention: up to <see cref="SpinLimit"/> attempts with
/// exponential back-off (<see cref="CpuPause"/> doubling up to <see cref="MaxBackoffIterations"/>), which
/// covers a holder running on another core; then the waiter sets the <see cref="ContendedBit"/> and sleeps with
/// FUTEX_WAIT on the word (a holder that was descheduled would otherwise be spun against for a whole time slice, and
/// this machine has two cores). Release exchanges the word with 0 and issues FUTEX_WAKE(1) only when the contended
/// bit was set. A woken waiter takes the lock with the contended bit set, since it cannot know whether others still
/// sleep (Drepper, "Futexes are tricky", mutex #3); that costs at most one unneeded wake-up later.</para>
/// <para>Use it only in place: <c>ref var s = ref region.Ref&lt;SharedSpinLock&gt;(offset); s.Acquire();</c>. A copy
/// is a different lock. The zeroed word is a free lock, so zero-filled memory needs no initialisation.
/// The supervisor uses <see cref="TryAcquire()"/> or <see cref="TryAcquire(TimeSpan)"/>, never <see cref="Acquire"/>.</para>
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct SharedSpinLock
{
    public const int Size = 4;

    /// <summary>CAS attempts before sleeping.</summary>
    public const int SpinLimit = 64;

    /// <summary>Upper bound of one back-off step, in pause instructions.</summary>
    public const int MaxBackoffIterations = 256;

    /// <summary>Set in the word while someone sleeps (or is about to) on it. Pids are below 2^22, so it never
    /// collides with a pid.</summary>
    internal const int ContendedBit = 1 << 30;

    private const int Free = 0;

    /// <summary>0 = free; otherwise the holder's pid, plus <see cref="ContendedBit"/> when a waiter may sleep.</summary>
    [FieldOffset(0)] private int _word;

    /// <summary>The holding process's pid, 0 when free. Racy: for diagnostics and dead-holder detection.</summary>
    public readonly int HolderPid => Volatile.Read(in _word) & ~ContendedBit;

    public readonly bool IsHeld => Volatile.Read(in _word) != Free;

    /// <summary>One CAS; never spins or sleeps.</summary>
    public bool TryAcquire() => Interlocked.CompareExchange(ref _word, ProcessControl.CurrentPid, Free) == Free;

    /// <summary>Acquires, sleeping on the futex after a bounded spin. No timeout: not for the supervisor.</summary>
    public void Acquire()
    {
        if (!TryAcquire())
            AcquireSlow(Deadline.Infinite);
    }

    /// <summary>Acquires within <paramref name="timeout"/>; false on timeout.</summary>
    public bool TryAcquire(TimeSpan timeout) => TryAcquire() || AcquireSlow(Deadline.After(timeout));

    /// <summary>Releases. The caller must hold the lock (checked only against the pid, in Debug builds).</summary>
    public void Release()
    {
        System.Diagnostics.Debug.Assert(HolderPid == ProcessControl.CurrentPid, "releasing a spinlock this process does not hold");
        if ((Interlocked.Exchange(ref _word, Free) & ContendedBit) != 0)
            Futex.Wake(ref _word, 1);
    }

    private bool AcquireSlow(long deadline)
    {
        int pid = ProcessControl.CurrentPid;
        int backoff = 1;
        for (int attempt = 0; attempt < SpinLimit; attempt++)
        {
            if (Volatile.Read(ref _word) == Free && Interlocked.CompareExchange(ref _word, pid, Free) == Free)
                return true;
            CpuPause.Spin(backoff);
            backoff = Math.Min(backoff * 2, MaxBackoffIterations);
        }
        while (true)
        {
            int w = Volatile.Read(ref _word);
            if (w == Free)
            {
                if (Interlocked.CompareExchange(ref _word, pid | ContendedBit, Free) == Free)
                    return true;
                continue;
            }
            if ((w & ContendedBit) == 0)
            {
                if (Interlocked.CompareExchange(ref _word, w | ContendedBit, w) != w)
                    continue;
                w |= ContendedBit;
            }
            if (Futex.Wait(ref _word, w, deadline) == FutexWaitResult.TimedOut)
                return false; // the contended bit may stay set: costs the holder one spare FUTEX_WAKE
        }
    }
}
