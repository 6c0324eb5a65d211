using System.Collections;
using System.Runtime.InteropServices;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Text;

namespace Postmaster.Shmem.Os;

/// <summary>What to start and how.</summary>
/// <param name="Path">Executable path.</param>
/// <param name="Arguments">argv[1..]; argv[0] is <paramref name="Path"/>.</param>
/// <param name="Environment">Extra or overriding variables on top of this process's environment.</param>
/// <param name="StdinPath">Opened read-only as fd 0 (e.g. /dev/null); null inherits ours.</param>
/// <param name="StdoutFd">dup2'ed to fd 1 and 2 when set; null inherits ours.</param>
/// <param name="InheritFds">Descriptors passed to the child, each dup2'ed to the target number (e.g. a pipe end to 3).</param>
/// <param name="NewSession">setsid() in the child: its own session and process group, no controlling terminal.</param>
internal sealed record SpawnOptions(
    string Path,
    IReadOnlyList<string> Arguments,
    IReadOnlyDictionary<string, string>? Environment = null,
    string? StdinPath = null,
    int? StdoutFd = null,
    IReadOnlyList<(int Fd, int TargetFd)>? InheritFds = null,
    bool NewSession = false,
    IReadOnlyList<int>? BlockedSignals = null);

/// <summary>
/// The one way postmaster starts processes: posix_spawn (vfork + exec, no managed fork), with every signal reset to
/// its default disposition and an empty signal mask in the child, and reaping by pid with waitpid(pid, WNOHANG).
/// Never waitpid(-1) and never mixed with System.Diagnostics.Process, whose children the runtime reaps itself.
/// Descriptors are not inherited unless listed (everything this process opens is O_CLOEXEC).
/// </summary>
internal static unsafe class ProcessSpawner
{
    private static readonly int[] s_untouchableSignals = { Signals.SIGKILL, Signals.SIGSTOP, 32, 33 }; // 32/33: glibc internal

    public static int Spawn(SpawnOptions o)
    {
        var argv = new List<string> { o.Path };
        argv.AddRange(o.Arguments);
        var env = BuildEnvironment(o.Environment);
        byte* fileActions = stackalloc byte[Libc.PosixSpawnFileActionsSize];
        byte* attr = stackalloc byte[Libc.PosixSpawnAttrSize];
        byte* sigdef = stackalloc byte[Libc.SigsetSize];
        byte* sigmask = stackalloc byte[Libc.SigsetSize];
        var pinned = new List<nint>();
        try
        {
            Check(Libc.posix_spawn_file_actions_init(fileActions), "posix_spawn_file_actions_init");
            Check(Libc.posix_spawnattr_init(attr), "posix_spawnattr_init");
            if (o.StdinPath is not null)
            {
                byte* p = Utf8(o.StdinPath, pinned);
                Check(Libc.posix_spawn_file_actions_addopen(fileActions, 0, p, Libc.O_RDONLY, 0), "addopen");
            }
            if (o.StdoutFd is int outFd)
            {
                Check(Libc.posix_spawn_file_actions_adddup2(fileActions, outFd, 1), "adddup2");
                Check(Libc.posix_spawn_file_actions_adddup2(fileActions, outFd, 2), "adddup2");
            }
            foreach (var (fd, target) in o.InheritFds ?? Array.Empty<(int, int)>())
                Check(Libc.posix_spawn_file_actions_adddup2(fileActions, fd, target), "adddup2"); // dup2 clears CLOEXEC

            Libc.sigfillset(sigdef);
            foreach (int s in s_untouchableSignals)
                Libc.sigdelset(sigdef, s);
            Libc.sigemptyset(sigmask);
            foreach (int s in o.BlockedSignals ?? Array.Empty<int>())
                Libc.sigaddset(sigmask, s); // pending until the child unblocks them (ProcessControl.UnblockSignals)
            short flags = (short)(Libc.POSIX_SPAWN_SETSIGDEF | Libc.POSIX_SPAWN_SETSIGMASK | (o.NewSession ? Libc.POSIX_SPAWN_SETSID : 0));
            Check(Libc.posix_spawnattr_setflags(attr, flags), "posix_spawnattr_setflags");
            Check(Libc.posix_spawnattr_setsigdefault(attr, sigdef), "posix_spawnattr_setsigdefault");
            Check(Libc.posix_spawnattr_setsigmask(attr, sigmask), "posix_spawnattr_setsigmask");

            byte** av = stackalloc byte*[argv.Count + 1];
            for (int i = 0; i < argv.Count; i++)
                av[i] = Utf8(argv[i], pinned);
            av[argv.Count] = null;
            byte** ev = (byte**)NativeMemory.Alloc((nuint)(env.Count + 1), (nuint)sizeof(byte*));
            pinned.Add((nint)ev);
            for (int i = 0; i < env.Count; i++)
                ev[i] = Utf8(env[i], pinned);
            ev[env.Count] = null;

            int pid;
            int rc = Libc.posix_spawn(&pid, av[0], fileActions, attr, av, ev); // returns the error number
            if (rc != 0)
                throw new OsCallException($"could not start process \"{o.Path}\"", rc);
            return pid;
        }
        finally
        {
            Libc.posix_spawn_file_actions_destroy(fileActions);
            Libc.posix_spawnattr_destroy(attr);
            foreach (var p in pinned)
                NativeMemory.Free((void*)p);
        }
    }

    /// <summary>waitpid(pid, WNOHANG): the exit if the child has ended (and is now reaped), else null.
    /// Throws if <paramref name="pid"/> is not our child (ECHILD), which means someone else reaped it.</summary>
    public static ChildExit? TryReap(int pid)
    {
        int status;
        while (true)
        {
            int rc = Libc.waitpid(pid, &status, Libc.WNOHANG);
            if (rc == pid)
                return ChildExit.FromWaitStatus(pid, status);
            if (rc == 0)
                return null;
            int errno = Libc.Errno;
            if (errno == Errno.EINTR)
                continue;
            throw new OsCallException($"could not wait for process {pid}", errno);
        }
    }

    /// <summary>waitid(P_ALL, WEXITED | WNOWAIT): the pid of a child that has ended, left unreaped (its zombie keeps
    /// the pid, so it cannot be reused until <see cref="TryReap"/>); waits for one when <paramref name="block"/>.
    /// For the init role only (<c>postmaster start</c> as process 1 or with --init), which has one child of its own
    /// and reaps every orphan; never in the supervisor, which reaps its backends by pid.
    /// Null when there is no child at all (ECHILD) or, without blocking, none has ended.</summary>
    public static int? PeekEnded(bool block)
    {
        byte* info = stackalloc byte[Libc.SiginfoSize];
        while (true)
        {
            new Span<byte>(info, Libc.SiginfoSize).Clear();
            int rc = Libc.waitid(Libc.P_ALL, 0, info, Libc.WEXITED | Libc.WNOWAIT | (block ? 0 : Libc.WNOHANG));
            if (rc == 0)
            {
                int pid = *(int*)(info + Libc.SiginfoPidOffset);
                return pid > 0 ? pid : null; // WNOHANG with nothing ended leaves si_pid 0
            }
            int errno = Libc.Errno;
            if (errno == Errno.EINTR)
                continue;
            if (errno == Errno.ECHILD)
                return null;
            throw new OsCallException("could not wait for a child process (waitid)", errno);
        }
    }

    /// <summary>fcntl(F_SETPIPE_SZ): asks for a pipe of <paramref name="bytes"/>; false when refused (above the
    /// user's limit, /proc/sys/fs/pipe-max-size): the pipe keeps its size.</summary>
    public static bool TryResizePipe(int fd, int bytes) => Libc.fcntl_int(fd, 1031 /* F_SETPIPE_SZ */, bytes) >= 0;

    /// <summary>A pipe; both ends close-on-exec (pass one to a child through <see cref="SpawnOptions.InheritFds"/>).</summary>
    public static (SafeFd Read, SafeFd Write) CreatePipe()
    {
        int* fds = stackalloc int[2];
        if (Libc.pipe2(fds, Libc.O_CLOEXEC) != 0)
            throw new OsCallException("could not create pipe", Libc.Errno);
        return (new SafeFd(fds[0]), new SafeFd(fds[1]));
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> (-1: for ever) for data or EOF on <paramref name="fd"/>,
    /// then reads what is there. Null on timeout; an empty string at EOF.</summary>
    public static string? ReadWithTimeout(SafeFd fd, int timeoutMs)
    {
        var pfd = new Libc.PollFd { fd = fd.Fd, events = Libc.POLLIN };
        int rc;
        do
        {
            rc = Libc.poll(&pfd, 1, timeoutMs);
        }
        while (rc < 0 && Libc.Errno == Errno.EINTR);
        if (rc < 0)
            throw new OsCallException("could not poll pipe", Libc.Errno);
        if (rc == 0)
            return null;
        byte* buf = stackalloc byte[256];
        nint n = Libc.read(fd.Fd, buf, 256);
        return n <= 0 ? "" : Utf8Text.GetString(new ReadOnlySpan<byte>(buf, (int)n));
    }

    /// <summary>Reads <paramref name="fd"/> to end-of-file as UTF-8 (the backend's parameter pipe). Raw read(2) calls:
    /// a FileStream and StreamReader would cost a fresh process about 5 ms of type loading on its start-up path.</summary>
    public static string ReadToEnd(int fd)
    {
        var buffer = new byte[8192];
        int length = 0;
        while (true)
        {
            if (length == buffer.Length)
                Array.Resize(ref buffer, buffer.Length * 2);
            nint n;
            fixed (byte* p = &buffer[length])
                n = Libc.read(fd, p, (nuint)(buffer.Length - length));
            if (n == 0)
                return Utf8Text.GetString(buffer.AsSpan(0, length));
            if (n > 0)
                length += (int)n;
            else if (Libc.Errno != Errno.EINTR)
                throw new OsCallException($"could not read descriptor {fd}", Libc.Errno);
        }
    }

    /// <summary>Writes a short message to a descriptor (the readiness pipe); best effort, returns false on failure.</summary>
    public static bool TryWrite(int fd, string text)
    {
        var bytes = Utf8Text.GetBytes(text);
        fixed (byte* p = bytes)
            return Libc.write(fd, p, (nuint)bytes.Length) == bytes.Length;
    }

    /// <summary>write(2) of all of <paramref name="data"/> (retried on EINTR and short writes); false on failure
    /// (EPIPE: the reader is gone).</summary>
    public static bool WriteAll(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            int done = 0;
            while (done < data.Length)
            {
                nint n = Libc.write(fd, p + done, (nuint)(data.Length - done));
                if (n > 0)
                {
                    done += (int)n;
                    continue;
                }
                if (n < 0 && Libc.Errno == Errno.EINTR)
                    continue;
                return false;
            }
        }
        return true;
    }

    /// <summary>poll(2) for <paramref name="fd"/> readable (data or end of file) within <paramref name="timeoutMs"/>.</summary>
    public static bool WaitReadable(int fd, int timeoutMs)
    {
        var pfd = new Libc.PollFd { fd = fd, events = Libc.POLLIN };
        while (true)
        {
            int rc = Libc.poll(&pfd, 1, timeoutMs);
            if (rc >= 0)
                return rc > 0;
            int errno = Libc.Errno;
            if (errno != Errno.EINTR)
                throw new OsCallException("could not poll a pipe", errno);
        }
    }

    /// <summary>read(2) into <paramref name="buffer"/> (retried on EINTR): bytes read, 0 at end of file.</summary>
    public static int Read(int fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = Libc.read(fd, p, (nuint)buffer.Length);
                if (n >= 0)
                    return (int)n;
                int errno = Libc.Errno;
                if (errno != Errno.EINTR)
                    throw new OsCallException("could not read from a pipe", errno);
            }
        }
    }

    /// <summary>fcntl(F_DUPFD_CLOEXEC): a close-on-exec copy of <paramref name="fd"/> numbered at least
    /// <paramref name="minimum"/> (above the numbers a spawn's file actions target).</summary>
    public static SafeFd Duplicate(int fd, int minimum)
    {
        int copy = Libc.fcntl_int(fd, Libc.F_DUPFD_CLOEXEC, minimum);
        if (copy < 0)
            throw new OsCallException($"could not duplicate descriptor {fd}", Libc.Errno);
        return new SafeFd(copy);
    }

    /// <summary>Closes a raw inherited descriptor (e.g. the readiness pipe once used).</summary>
    public static void Close(int fd) => Libc.close(fd);

    /// <summary>Sets the signal this process receives when its parent thread exits (prctl PR_SET_PDEATHSIG).</summary>
    public static void SetParentDeathSignal(int signal)
    {
        if (Libc.prctl(Libc.PR_SET_PDEATHSIG, (nuint)signal, 0, 0, 0) != 0)
            throw new OsCallException("could not set the parent-death signal", Libc.Errno);
    }

    private static List<string> BuildEnvironment(IReadOnlyDictionary<string, string>? extra)
    {
        var vars = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry e in System.Environment.GetEnvironmentVariables())
            vars[(string)e.Key] = (string?)e.Value ?? "";
        if (extra is not null)
            foreach (var (k, v) in extra)
                vars[k] = v;
        return vars.Select(kv => kv.Key + "=" + kv.Value).ToList();
    }

    private static byte* Utf8(string s, List<nint> pinned)
    {
        int n = Utf8Text.GetByteCount(s);
        byte* p = (byte*)NativeMemory.Alloc((nuint)n + 1);
        pinned.Add((nint)p);
        Utf8Text.GetBytes(s, new Span<byte>(p, n));
        p[n] = 0;
        return p;
    }

    private static void Check(int rc, string call)
    {
        if (rc != 0)
            throw new OsCallException($"{call} failed", rc);
    }
}
