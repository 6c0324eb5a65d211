using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;

namespace Postmaster.Shmem.Os;

/// <summary>
/// Passing an open descriptor to another process over a Unix-domain socket (SCM_RIGHTS): how the postmaster hands a
/// client connection to the backend that serves it. A message is a few bytes of payload plus at most one descriptor;
/// the receiver's copy is close-on-exec (MSG_CMSG_CLOEXEC).
/// </summary>
internal static unsafe class FdPassing
{
    /// <summary>Sends <paramref name="payload"/> (non-empty) with <paramref name="fd"/> attached (or none when
    /// <paramref name="fd"/> is -1). Returns 0, or the errno (EAGAIN when the channel is full, EPIPE/ECONNRESET
    /// when the peer is gone); never raises SIGPIPE.</summary>
    public static int Send(int channel, ReadOnlySpan<byte> payload, int fd, bool nonBlocking = true)
    {
        fixed (byte* data = payload)
        {
            var iov = new Libc.IoVec { Base = data, Length = (nuint)payload.Length };
            var cmsg = new Libc.CmsgOneFd { Length = 20, Level = Libc.SOL_SOCKET, Type = Libc.SCM_RIGHTS, Fd = fd };
            var msg = new Libc.MsgHdr { Iov = &iov, IovLength = 1 };
            if (fd >= 0)
            {
                msg.Control = &cmsg;
                msg.ControlLength = (nuint)sizeof(Libc.CmsgOneFd);
            }
            int flags = Libc.MSG_NOSIGNAL | (nonBlocking ? Libc.MSG_DONTWAIT : 0);
            while (true)
            {
                nint n = Libc.sendmsg(channel, &msg, flags);
                if (n == payload.Length)
                    return 0;
                if (n >= 0)
                    return Errno.EIO; // a short write on the channel: the caller drops it
                int errno = Libc.Errno;
                if (errno != Errno.EINTR)
                    return errno;
            }
        }
    }

    /// <summary>Receives one message into <paramref name="buffer"/>: its length (0 = the peer closed the channel) and
    /// the descriptor that came with it (-1 = none). Blocks unless <paramref name="nonBlocking"/>; then EAGAIN is
    /// returned as a negative length (-EAGAIN). Other failures throw.</summary>
    public static int Receive(int channel, Span<byte> buffer, out int fd, bool nonBlocking = false)
    {
        fd = -1;
        fixed (byte* data = buffer)
        {
            var iov = new Libc.IoVec { Base = data, Length = (nuint)buffer.Length };
            var cmsg = default(Libc.CmsgOneFd);
            var msg = new Libc.MsgHdr { Iov = &iov, IovLength = 1, Control = &cmsg, ControlLength = (nuint)sizeof(Libc.CmsgOneFd) };
            int flags = Libc.MSG_CMSG_CLOEXEC | (nonBlocking ? Libc.MSG_DONTWAIT : 0);
            while (true)
            {
                nint n = Libc.recvmsg(channel, &msg, flags);
                if (n >= 0)
                {
                    if (msg.ControlLength >= 20 && cmsg.Level == Libc.SOL_SOCKET && cmsg.Type == Libc.SCM_RIGHTS)
                        fd = cmsg.Fd;
                    return (int)n;
                }
                int errno = Libc.Errno;
                if (errno == Errno.EINTR)
                    continue;
                if (errno == Errno.EAGAIN && nonBlocking)
                    return -Errno.EAGAIN;
                throw new OsCallException("could not receive from the postmaster's connection channel", errno);
            }
        }
    }

    /// <summary>Clears O_NONBLOCK on a received descriptor (the flag belongs to the open file, which the sender's runtime
    /// may have made non-blocking); a socket made from it then starts in blocking mode.</summary>
    public static void MakeBlocking(int fd)
    {
        int flags = Libc.fcntl_int(fd, Libc.F_GETFL, 0);
        if (flags >= 0 && (flags & Libc.O_NONBLOCK) != 0)
            Libc.fcntl_int(fd, Libc.F_SETFL, flags & ~Libc.O_NONBLOCK);
    }

    /// <summary>Closes a descriptor received with <see cref="Receive"/> that is not going to be used.</summary>
    public static void Close(int fd)
    {
        if (fd >= 0)
            Libc.close(fd);
    }
}
