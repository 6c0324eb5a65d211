namespace Postmaster.Testing;

/// <summary>A wait of the harness did not see its condition within the cluster's timeout
/// (<see cref="ClusterOptions.Timeout"/>). The message names the condition, the timeout, the last <c>status</c> and
/// the end of the server log.</summary>
public sealed class ClusterTimeoutException : ClusterException
{
    /// <summary>A wait for <paramref name="message"/>'s condition that timed out.</summary>
    public ClusterTimeoutException(string message)
        : base(message)
    {
    }
}
