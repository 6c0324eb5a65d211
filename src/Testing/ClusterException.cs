namespace Postmaster.Testing;

/// <summary>
/// A failed expectation of the harness: a wait that timed out (<see cref="ClusterTimeoutException"/>), a command that
/// failed, a process that is not the instance's, something left behind. Every test framework reports an exception it
/// does not know as a failure with its message, so the harness needs none of them. The message says what was
/// expected and, where it helps, the last <c>status</c> and the end of the server log.
/// </summary>
public class ClusterException : Exception
{
    /// <summary>A failure described by <paramref name="message"/>.</summary>
    public ClusterException(string message)
        : base(message)
    {
    }

    /// <summary>A failure described by <paramref name="message"/>, caused by <paramref name="inner"/>.</summary>
    public ClusterException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
