using System.Runtime.InteropServices;

namespace Postmaster.Shmem.Interop;

/// <summary>What System.Net.Sockets does not offer: passing descriptors (SCM_RIGHTS), poll(2) over raw descriptors,
/// eventfd(2). Layouts are those of 64-bit Linux (x86-64 and arm64 agree).</summary>
internal static unsafe partial class Libc
{
    public const int SOL_SOCKET = 1;
    public const int SCM_RIGHTS = 1;
    public const int SO_PEERCRED = 17;
    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_NOSIGNAL = 0x4000;
    public const int MSG_CMSG_CLOEXEC = 0x40000000;
    public const int MSG_CTRUNC = 0x8;

    public const short POLLOUT = 0x4;
    public const short POLLERR = 0x8;
    public const short POLLHUP = 0x10;
    public const short POLLNVAL = 0x20;

    public const int EFD_NONBLOCK = 0x800;
    public const int EFD_CLOEXEC = 0x80000;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    /// <summary>struct msghdr (56 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>struct cmsghdr carrying one int (CMSG_SPACE(sizeof(int)) = 24 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct CmsgOneFd
    {
        public nuint Length; // CMSG_LEN(sizeof(int)) = 20
        public int Level;
        public int Type;
        public int Fd;
        private readonly int _pad;
    }

    [LibraryImport(Name, EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint sendmsg(int fd, MsgHdr* msg, int flags);

    [LibraryImport(Name, EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint recvmsg(int fd, MsgHdr* msg, int flags);

    public const int F_SETFD = 2;
    public const int F_DUPFD_CLOEXEC = 1030;
    public const int F_GETFL = 3;
    public const int F_SETFL = 4;
    public const int FD_CLOEXEC = 1;

    [LibraryImport(Name, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int fcntl_int(int fd, int cmd, int arg);

    [LibraryImport(Name, EntryPoint = "eventfd", SetLastError = true)]
    public static partial int eventfd(uint initval, int flags);

    public const int SOCK_CLOEXEC = 0x80000;
    public const int SHUT_RDWR = 2;

    [LibraryImport(Name, EntryPoint = "accept4", SetLastError = true)]
    public static partial int accept4(int fd, void* addr, void* addrlen, int flags);

    [LibraryImport(Name, EntryPoint = "shutdown", SetLastError = true)]
    public static partial int shutdown(int fd, int how);

    public const int EPOLL_CLOEXEC = 0x80000;
    public const int EPOLL_CTL_ADD = 1;
    public const uint EPOLLIN = 0x1;
    public const uint EPOLLERR = 0x8;
    public const uint EPOLLHUP = 0x10;
    public const uint EPOLLEXCLUSIVE = 1u << 28;

    /// <summary>sizeof(struct epoll_event) and the offset of its data field: packed on x86-64 (12 and 4), natural on
    /// arm64 (16 and 8). The events field is at offset 0 on both.</summary>
    public static readonly int EpollEventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

    public static readonly int EpollDataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    [LibraryImport(Name, EntryPoint = "epoll_create1", SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport(Name, EntryPoint = "epoll_ctl", SetLastError = true)]
    public static partial int epoll_ctl(int epfd, int op, int fd, void* ev);

    [LibraryImport(Name, EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int epoll_wait(int epfd, void* events, int maxevents, int timeout);
}
