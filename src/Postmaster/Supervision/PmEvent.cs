namespace Postmaster.Supervision;

/// <summary>What wakes the supervisor loop. Signal handlers only post these; all work happens in the loop.</summary>
public abstract record PmEvent
{
    public sealed record ShutdownRequested(ShutdownMode Mode) : PmEvent;

    public sealed record ReloadRequested : PmEvent;

    /// <summary>SIGCHLD: some child may have exited; the loop reaps its known children by pid.</summary>
    public sealed record ChildSignal : PmEvent;

    /// <summary>SIGUSR1: a backend posted a request in shared memory.</summary>
    public sealed record PmSignal : PmEvent;

    /// <summary>The connection acceptor wants more connection backends.</summary>
    public sealed record ConnectionsWanted : PmEvent;
}
