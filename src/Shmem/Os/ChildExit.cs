namespace Postmaster.Shmem.Os;

/// <summary>
/// How a child ended, decoded from its wait status: an exit code and a signal are told apart (a child that calls
/// exit(137) was not killed), unlike System.Diagnostics.Process which reports 128+signo for both.
/// </summary>
internal readonly record struct ChildExit(int Pid, int? ExitCode, int? Signal, bool CoreDumped, int RawStatus)
{
    public static ChildExit FromWaitStatus(int pid, int status)
    {
        int low = status & 0x7f;
        if (low == 0)
            return new ChildExit(pid, (status >> 8) & 0xff, null, false, status);
        if (low != 0x7f)
            return new ChildExit(pid, null, low, (status & 0x80) != 0, status);
        return new ChildExit(pid, null, null, false, status); // stopped: not an exit (never asked for)
    }

    public bool IsExit => ExitCode is not null;

    public bool IsSignal => Signal is not null;

    /// <summary>PostgreSQL's LogChildExit wording: "NAME (PID n) exited with exit code 1",
    /// "NAME (PID n) was terminated by signal 9: Killed", "NAME (PID n) exited with unrecognized status N".</summary>
    public string Describe(string processName) => this switch
    {
        { ExitCode: int code } => $"{processName} (PID {Pid}) exited with exit code {code}",
        { Signal: int sig } => $"{processName} (PID {Pid}) was terminated by signal {sig}: {Signals.Describe(sig)}" +
                               (CoreDumped ? " (core dumped)" : ""),
        _ => $"{processName} (PID {Pid}) exited with unrecognized status {RawStatus}",
    };
}
