using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;

namespace Postmaster.Shmem.Os;

/// <summary>
/// What an idle connection backend waits on when it may accept a client itself (the prefork model): its channel to
/// the postmaster and the postmaster's listening sockets, in one epoll set. The listeners are added with
/// EPOLLEXCLUSIVE, so a new connection wakes one of the backends waiting on it, not all of them (a process that is
/// not waiting is never woken). Not thread-safe: the backend's main thread's own.
/// </summary>
internal sealed unsafe class AcceptSet : IDisposable
{
    /// <summary><see cref="Wait"/>'s result when nothing was ready (timeout, or a signal).</summary>
    public const int None = -2;

    private readonly SafeFd _epoll;
    private readonly List<int> _listeners = new();
    private readonly byte[] _events;

    public AcceptSet(int channel)
    {
        int fd = Libc.epoll_create1(Libc.EPOLL_CLOEXEC);
        if (fd < 0)
            throw new OsCallException("could not create an epoll set (epoll_create1)", Libc.Errno);
        _epoll = new SafeFd(fd);
        _events = new byte[Libc.EpollEventSize * 8];
        Add(channel, Libc.EPOLLIN, ulong.MaxValue);
    }

    /// <summary>The listening sockets added so far (descriptors this process owns; closed by <see cref="Dispose"/>).</summary>
    public IReadOnlyList<int> Listeners => _listeners;

    /// <summary>Adds a listening socket (this set owns the descriptor from now on).</summary>
    public void AddListener(int fd)
    {
        try
        {
            Add(fd, Libc.EPOLLIN | Libc.EPOLLEXCLUSIVE, (ulong)_listeners.Count);
        }
        catch
        {
            Libc.close(fd);
            throw;
        }
        _listeners.Add(fd);
    }

    private void Add(int fd, uint events, ulong data)
    {
        byte* ev = stackalloc byte[16];
        *(uint*)ev = events;
        *(ulong*)(ev + Libc.EpollDataOffset) = data;
        if (Libc.epoll_ctl(_epoll.Fd, Libc.EPOLL_CTL_ADD, fd, ev) != 0)
            throw new OsCallException($"could not add descriptor {fd} to an epoll set (epoll_ctl)", Libc.Errno);
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> (-1: no limit): the index of a readable listener, or
    /// <see cref="None"/>; <paramref name="channel"/> says whether the channel is readable too (a message, or its end:
    /// the caller reads it first, and then owes the acceptor a wake-up if a listener was ready: with EPOLLEXCLUSIVE that
    /// connection woke this process only).</summary>
    public int Wait(int timeoutMs, out bool channel)
    {
        channel = false;
        fixed (byte* events = _events)
        {
            int n = Libc.epoll_wait(_epoll.Fd, events, _events.Length / Libc.EpollEventSize, timeoutMs);
            if (n < 0)
            {
                int errno = Libc.Errno;
                if (errno == Errno.EINTR)
                    return None;
                throw new OsCallException("epoll_wait() failed", errno);
            }
            int listener = None;
            for (int i = 0; i < n; i++)
            {
                ulong data = *(ulong*)(events + i * Libc.EpollEventSize + Libc.EpollDataOffset);
                if (data == ulong.MaxValue)
                    channel = true;
                else if (data < (ulong)_listeners.Count)
                    listener = (int)data;
            }
            return listener;
        }
    }

    /// <summary>accept4(2) of one pending connection on listener <paramref name="index"/> (non-blocking: the listener
    /// is): the client's descriptor, close-on-exec and blocking; or -errno (-EAGAIN: another process took it, or a
    /// Unix listener was shut down; -EINVAL: a TCP listener was shut down; -EMFILE and the like: out of resources).</summary>
    public int TryAccept(int index)
    {
        while (true)
        {
            int fd = Libc.accept4(_listeners[index], null, null, Libc.SOCK_CLOEXEC);
            if (fd >= 0)
                return fd;
            int errno = Libc.Errno;
            if (errno != Errno.EINTR && errno != Errno.ECONNABORTED)
                return -errno;
        }
    }

    public void Dispose()
    {
        foreach (int fd in _listeners)
            Libc.close(fd);
        _listeners.Clear();
        _epoll.Dispose();
    }
}
