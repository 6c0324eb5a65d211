using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;

namespace Postmaster.Shmem.Os;

/// <summary>Waiting on and reading from several pipes at once (a CLI watching a daemon's output and readiness
/// pipes).</summary>
internal static unsafe class Pipes
{
    private const short POLLERR = 8, POLLHUP = 16;

    /// <summary>poll(2) for readability (data or end-of-file) up to <paramref name="timeoutMs"/>; which are readable.</summary>
    public static bool[] WaitReadable(IReadOnlyList<SafeFd> fds, int timeoutMs)
    {
        var pfds = stackalloc Libc.PollFd[fds.Count];
        for (int i = 0; i < fds.Count; i++)
            pfds[i] = new Libc.PollFd { fd = fds[i].Fd, events = Libc.POLLIN };
        int rc;
        do
            rc = Libc.poll(pfds, (nuint)fds.Count, timeoutMs);
        while (rc < 0 && Libc.Errno == Errno.EINTR);
        if (rc < 0)
            throw new OsCallException("could not poll pipes", Libc.Errno);
        var ready = new bool[fds.Count];
        for (int i = 0; i < fds.Count; i++)
            ready[i] = (pfds[i].revents & (Libc.POLLIN | POLLHUP | POLLERR)) != 0;
        return ready;
    }

    /// <summary>One read(2) of what is there (call when readable); null at end-of-file.</summary>
    public static byte[]? ReadSome(SafeFd fd)
    {
        const int Chunk = 65536;
        var buffer = new byte[Chunk];
        while (true)
        {
            nint n;
            fixed (byte* p = buffer)
                n = Libc.read(fd.Fd, p, Chunk);
            if (n > 0)
                return buffer[..(int)n];
            if (n == 0)
                return null;
            int errno = Libc.Errno;
            if (errno == Errno.EINTR)
                continue;
            if (errno == Errno.EAGAIN)
                return Array.Empty<byte>();
            throw new OsCallException($"could not read pipe {fd.Fd}", errno);
        }
    }
}
