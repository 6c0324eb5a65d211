using System.Runtime.InteropServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;

namespace Postmaster.Shmem.Os;

/// <summary>Readiness of one descriptor, for <see cref="Poller.Wait"/>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PollEntry
{
    public int Fd;
    public short Events;
    public short Ready;

    public const short Readable = Libc.POLLIN;
    public const short Writable = Libc.POLLOUT;

    public PollEntry(int fd, short events = Readable)
    {
        Fd = fd;
        Events = events;
        Ready = 0;
    }

    /// <summary>Readable, or the peer hung up or failed (a read then says which).</summary>
    public readonly bool IsReadable => (Ready & (Libc.POLLIN | Libc.POLLHUP | Libc.POLLERR)) != 0;

    public readonly bool IsInvalid => (Ready & Libc.POLLNVAL) != 0;
}

/// <summary>poll(2) over raw descriptors, and an eventfd to wake a thread blocked in it.</summary>
internal static unsafe class Poller
{
    /// <summary>Waits until an entry is ready or <paramref name="timeoutMs"/> passes (-1 = no limit); the number of
    /// ready entries (0 on timeout or EINTR).</summary>
    public static int Wait(Span<PollEntry> entries, int timeoutMs)
    {
        fixed (PollEntry* p = entries)
        {
            int n = Libc.poll((Libc.PollFd*)p, (nuint)entries.Length, timeoutMs);
            if (n >= 0)
                return n;
            int errno = Libc.Errno;
            if (errno == Errno.EINTR)
                return 0;
            throw new OsCallException("poll() failed", errno);
        }
    }
}

/// <summary>An eventfd (non-blocking, close-on-exec): <see cref="Signal"/> from any thread makes <see cref="Fd"/>
/// readable until <see cref="Drain"/>.</summary>
internal sealed unsafe class WakeEvent : IDisposable
{
    private readonly SafeFd _fd;

    public WakeEvent()
    {
        int fd = Libc.eventfd(0, Libc.EFD_NONBLOCK | Libc.EFD_CLOEXEC);
        if (fd < 0)
            throw new OsCallException("could not create eventfd", Libc.Errno);
        _fd = new SafeFd(fd);
    }

    public int Fd => _fd.Fd;

    public void Signal()
    {
        ulong one = 1;
        Libc.write(_fd.Fd, (byte*)&one, sizeof(ulong));
    }

    public void Drain()
    {
        ulong value;
        Libc.read(_fd.Fd, (byte*)&value, sizeof(ulong));
    }

    public void Dispose() => _fd.Dispose();
}
