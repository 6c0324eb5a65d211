namespace Postmaster.Testing;

/// <summary>The server's state as <c>status</c> reports it (the lock file's status line).</summary>
public enum ServerState
{
    /// <summary>No server runs (<c>status</c> exit 3).</summary>
    Stopped = 0,

    /// <summary>Starting, or rebuilding shared memory after a crash.</summary>
    Starting = 1,

    /// <summary>Ready: every configured worker has been started.</summary>
    Ready = 2,

    /// <summary>Shutting down.</summary>
    Stopping = 3,

    /// <summary>A state this version of the harness does not know.</summary>
    Unknown = 4,
}
