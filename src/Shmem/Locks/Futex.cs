using System.Runtime.CompilerServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;

namespace Postmaster.Shmem.Locks;

/// <summary>Why <see cref="Futex.Wait"/> returned. Every outcome except <see cref="TimedOut"/> means "re-check the
/// word and decide again": futex wake-ups can be spurious.</summary>
internal enum FutexWaitResult
{
    Woken,
    ValueChanged,
    Interrupted,
    TimedOut,
}

/// <summary>
/// Typed wait/wake on a 32-bit word in shared memory (the only caller of <see cref="Libc.futex_wait"/>). The word
/// must live in a shared mapping (never on the managed heap, which the GC may move) and be 4-byte aligned.
/// </summary>
internal static unsafe class Futex
{
    /// <summary>All waiters, for FUTEX_WAKE.</summary>
    public const int WakeAllCount = int.MaxValue;

    private const long NanosecondsPerSecond = 1_000_000_000;

    /// <summary>Sleeps while <paramref name="word"/> equals <paramref name="expected"/>, until woken or until
    /// <paramref name="deadline"/> (a <see cref="Deadline"/> timestamp). A passed deadline returns
    /// <see cref="FutexWaitResult.TimedOut"/> without a syscall. Unexpected errno values (EFAULT, EINVAL) throw.</summary>
    public static FutexWaitResult Wait(ref int word, int expected, long deadline)
    {
        Libc.timespec ts;
        Libc.timespec* timeout = null;
        if (deadline != Deadline.Infinite)
        {
            long ns = Deadline.RemainingNanoseconds(deadline);
            if (ns <= 0)
                return FutexWaitResult.TimedOut;
            ts.tv_sec = ns / NanosecondsPerSecond;
            ts.tv_nsec = ns % NanosecondsPerSecond;
            timeout = &ts;
        }
        if (Libc.futex_wait((int*)Unsafe.AsPointer(ref word), expected, timeout) == 0)
            return FutexWaitResult.Woken;
        int errno = Libc.Errno;
        return errno switch
        {
            Errno.EAGAIN => FutexWaitResult.ValueChanged,
            Errno.EINTR => FutexWaitResult.Interrupted,
            Errno.ETIMEDOUT => FutexWaitResult.TimedOut,
            _ => throw new OsCallException("could not wait on futex", errno),
        };
    }

    /// <summary>Wakes up to <paramref name="count"/> processes sleeping on <paramref name="word"/>; returns how many.</summary>
    public static int Wake(ref int word, int count)
    {
        int woken = Libc.futex_wake((int*)Unsafe.AsPointer(ref word), count);
        if (woken < 0)
            throw new OsCallException("could not wake futex waiters", Libc.Errno);
        return woken;
    }
}
