using System.Runtime.InteropServices;

namespace Postmaster.Shmem.Interop;

internal static unsafe partial class Libc
{
    public const int WNOHANG = 1;
    public const int PR_SET_PDEATHSIG = 1;
    public const int PR_SET_NAME = 15;
    public const int PR_SET_CHILD_SUBREAPER = 36;
    public const int PR_GET_CHILD_SUBREAPER = 37;

    [LibraryImport(Name, SetLastError = true)]
    public static partial int kill(int pid, int sig);

    // returns the pid, 0 with WNOHANG when the child is still running, -1 on failure
    [LibraryImport(Name, SetLastError = true)]
    public static partial int waitpid(int pid, int* status, int options);

    public const int P_ALL = 0;
    public const int WEXITED = 4;
    public const int WNOWAIT = 0x01000000;
    public const int SiginfoSize = 128;
    public const int SiginfoPidOffset = 16; // si_pid of the SIGCHLD member of the union (x86-64 and arm64)

    // waitid(2): with WNOWAIT the child stays waitable (a zombie keeps its pid)
    [LibraryImport(Name, SetLastError = true)]
    public static partial int waitid(int idtype, uint id, byte* infop, int options);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int setsid();

    public const int SCHED_OTHER = 0;
    public const int SCHED_BATCH = 3;

    // sched_setscheduler(2) on Linux sets one thread's policy (pid is a thread id; 0 = the calling thread);
    // param points at struct sched_param { int sched_priority; }, which must be 0 for SCHED_OTHER and SCHED_BATCH
    [LibraryImport(Name, SetLastError = true)]
    public static partial int sched_setscheduler(int pid, int policy, int* param);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int posix_spawn(int* pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);

    [LibraryImport(Name)]
    public static partial int posix_spawn_file_actions_init(void* actions);

    [LibraryImport(Name)]
    public static partial int posix_spawn_file_actions_destroy(void* actions);

    [LibraryImport(Name)]
    public static partial int posix_spawn_file_actions_adddup2(void* actions, int fd, int newfd);

    [LibraryImport(Name)]
    public static partial int posix_spawn_file_actions_addopen(void* actions, int fd, byte* path, int oflag, int mode);

    [LibraryImport(Name)]
    public static partial int posix_spawnattr_init(void* attr);

    [LibraryImport(Name)]
    public static partial int posix_spawnattr_destroy(void* attr);

    [LibraryImport(Name)]
    public static partial int posix_spawnattr_setflags(void* attr, short flags);

    [LibraryImport(Name)]
    public static partial int posix_spawnattr_setsigmask(void* attr, void* sigmask);

    [LibraryImport(Name)]
    public static partial int posix_spawnattr_setsigdefault(void* attr, void* sigdefault);

    [LibraryImport(Name)]
    public static partial int sigemptyset(void* set);

    [LibraryImport(Name)]
    public static partial int sigfillset(void* set);

    [LibraryImport(Name)]
    public static partial int sigdelset(void* set, int signo);

    [LibraryImport(Name)]
    public static partial int sigaddset(void* set, int signo);

    /// <summary>Returns the error number (it does not set errno).</summary>
    [LibraryImport(Name)]
    public static partial int pthread_sigmask(int how, void* set, void* oldset);

    public const int SIG_UNBLOCK = 1; // the same on x86-64 and arm64

    [LibraryImport(Name, EntryPoint = "syscall", SetLastError = true)]
    public static partial nint syscall3(nint number, nint a1, nint a2, nint a3);

    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;
    public const short POSIX_SPAWN_SETSID = 0x80;
    public const int PosixSpawnAttrSize = 336;        // sizeof(posix_spawnattr_t), glibc 64-bit
    public const int PosixSpawnFileActionsSize = 80;  // sizeof(posix_spawn_file_actions_t)
    public const int SigsetSize = 128;                // sizeof(sigset_t)
}

internal static unsafe partial class Libc
{
    public const short POLLIN = 1;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int fd;
        public short events;
        public short revents;
    }

    [LibraryImport(Name, SetLastError = true)]
    public static partial int pipe2(int* fds, int flags);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int poll(PollFd* fds, nuint nfds, int timeout);

    [LibraryImport(Name, SetLastError = true)]
    public static partial nint read(int fd, byte* buf, nuint count);

    [LibraryImport(Name, SetLastError = true)]
    public static partial nint write(int fd, byte* buf, nuint count);
}

internal static unsafe partial class Libc
{
    public const nint SIG_DFL = 0;
    public const nint SIG_IGN = 1;
    public const int SigactionSize = 152; // struct sigaction, glibc 64-bit: handler, mask[128], flags, restorer

    // act/oldact point to struct sigaction; the handler is the first field on x86-64 and arm64
    [LibraryImport(Name, SetLastError = true)]
    public static partial int sigaction(int signum, byte* act, byte* oldact);
}

internal static partial class Libc
{
    // ends the process at once: no atexit handlers, no runtime shutdown (PostgreSQL's _exit in quickdie)
    [LibraryImport(Name, EntryPoint = "_exit")]
    public static partial void _exit(int status);
}
