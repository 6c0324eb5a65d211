using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;

namespace Postmaster.Shmem.Os;

/// <summary>
/// A pidfd (pidfd_open, Linux 5.3+): a handle on one process that stays bound to it even if the process exits and its
/// pid is reused. Open it BEFORE checking that the pid is the process you mean, then signal through the handle: the
/// signal reaches the process that was checked or nobody (ESRCH), never a newcomer with a recycled pid.
/// </summary>
internal sealed class ProcessHandle : IDisposable
{
    private const int ENOSYS = 38;
    private readonly SafeFd? _fd;

    private ProcessHandle(int pid, SafeFd? fd)
    {
        Pid = pid;
        _fd = fd;
    }

    public int Pid { get; }

    /// <summary>A handle on <paramref name="pid"/>; null when there is no such process. Refuses pid &lt;= 1.</summary>
    public static ProcessHandle? TryOpen(int pid)
    {
        if (pid <= 1)
            return null;
        nint fd = Libc.syscall3(NativeArch.Current.SysPidfdOpen, pid, 0, 0);
        if (fd < 0)
        {
            int errno = Libc.Errno;
            if (errno is Errno.ESRCH or Errno.EINVAL)
                return null;
            if (errno == ENOSYS) // kernel before 5.3: plain kill(2), checked for existence now
                return ProcessControl.IsAlive(pid) ? new ProcessHandle(pid, null) : null;
            throw new OsCallException($"could not open process {pid} (pidfd_open)", errno);
        }
        return new ProcessHandle(pid, new SafeFd((int)fd));
    }

    /// <summary>pidfd_send_signal: true when delivered, false when the process has exited meanwhile; EPERM and other
    /// failures throw, naming the call, the pid and errno.</summary>
    public bool Signal(int signal)
    {
        if (_fd is null)
            return ProcessControl.Signal(Pid, signal);
        if (Libc.syscall4(Libc.SysPidfdSendSignal, _fd.Fd, signal, 0, 0) == 0)
            return true;
        int errno = Libc.Errno;
        if (errno == Errno.ESRCH)
            return false;
        throw new OsCallException($"could not send signal {signal} to process {Pid} (pidfd_send_signal)", errno);
    }

    public void Dispose() => _fd?.Dispose();
}
