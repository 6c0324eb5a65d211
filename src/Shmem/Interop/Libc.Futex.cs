using System.Runtime.InteropServices;

namespace Postmaster.Shmem.Interop;

/// <summary>
/// futex(2). glibc has no wrapper, so the call goes through syscall(2) with the per-architecture number from
/// <see cref="NativeArch.SysFutex"/> (202 on x86-64, 98 on arm64). This is the only file that issues the call.
/// FUTEX_PRIVATE_FLAG (128) is deliberately never set: every futex word here lives in memory shared between
/// processes that map it at different addresses, and only the non-private form keys the wait queue on the
/// underlying page rather than on this process's virtual address.
/// </summary>
internal static unsafe partial class Libc
{
    public const int FUTEX_WAIT = 0;
    public const int FUTEX_WAKE = 1;

    /// <summary>struct timespec on 64-bit Linux (16 bytes on x86-64 and arm64).</summary>
#pragma warning disable CS8981 // the C name is kept, as everywhere in Interop/
    [StructLayout(LayoutKind.Sequential)]
    public struct timespec
    {
        public long tv_sec;
        public long tv_nsec;
    }
#pragma warning restore CS8981

    // syscall(2) is variadic; integer-only arguments are passed exactly like a fixed six-argument call on both
    // supported ABIs. Returns the syscall's result, or -1 with errno set.
    [LibraryImport(Name, EntryPoint = "syscall", SetLastError = true)]
    public static partial nint syscall6(nint number, nint a1, nint a2, nint a3, nint a4, nint a5, nint a6);

    /// <summary>FUTEX_WAIT: sleeps while *uaddr == val. <paramref name="timeout"/> is RELATIVE (null = forever).
    /// Returns 0 when woken (possibly spuriously), -1 with errno EAGAIN (value differed), ETIMEDOUT or EINTR.</summary>
    public static int futex_wait(int* uaddr, int val, timespec* timeout) =>
        (int)syscall6(NativeArch.Current.SysFutex, (nint)uaddr, FUTEX_WAIT, val, (nint)timeout, 0, 0);

    /// <summary>FUTEX_WAKE: wakes up to <paramref name="count"/> waiters. Returns the number woken, or -1 with errno.</summary>
    public static int futex_wake(int* uaddr, int count) =>
        (int)syscall6(NativeArch.Current.SysFutex, (nint)uaddr, FUTEX_WAKE, count, 0, 0, 0);
}
