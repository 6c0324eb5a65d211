namespace Postmaster.Testing;

/// <summary>Where a configured worker instance is in its life (<c>status</c>'s <c>workers[].state</c>).</summary>
public enum WorkerState
{
    /// <summary>A state this version of the harness does not know.</summary>
    Unknown = 0,

    /// <summary>Waiting to be started.</summary>
    Pending = 1,

    /// <summary>Its process started and has not attached shared memory yet.</summary>
    Starting = 2,

    /// <summary>Its process runs, attached.</summary>
    Running = 3,

    /// <summary>It exited and waits for its restart delay.</summary>
    Backoff = 4,

    /// <summary>Stopped by <c>terminate</c>; <c>start-worker</c> starts it again.</summary>
    Stopped = 5,

    /// <summary>Given up after too many consecutive failures, or failed with <c>restart = never</c>.</summary>
    Failed = 6,

    /// <summary>It exited 0 and its restart policy does not start it again.</summary>
    Done = 7,
}
