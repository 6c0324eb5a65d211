namespace Postmaster.Testing;

/// <summary>The signals a test may send to the instance's processes (<see cref="PostmasterCluster.Signal(int, UnixSignal)"/>,
/// <see cref="PostmasterCluster.SignalPostmaster"/>).</summary>
public enum UnixSignal
{
    /// <summary>Reload (postmaster) or re-read the log level (backend).</summary>
    SIGHUP = 1,

    /// <summary>Fast shutdown (postmaster).</summary>
    SIGINT = 2,

    /// <summary>Immediate shutdown (postmaster); exit without the exit path (backend: a crash).</summary>
    SIGQUIT = 3,

    /// <summary>Ends the process at once: a crash.</summary>
    SIGKILL = 9,

    /// <summary>A segmentation fault, as the kernel would deliver it.</summary>
    SIGSEGV = 11,

    /// <summary>Smart shutdown (postmaster); stop request (backend).</summary>
    SIGTERM = 15,

    /// <summary>Continues a stopped process.</summary>
    SIGCONT = 18,

    /// <summary>Stops the process (it cannot notice anything until SIGCONT or SIGKILL).</summary>
    SIGSTOP = 19,
}
