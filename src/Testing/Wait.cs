using System.Diagnostics;

namespace Postmaster.Testing;

/// <summary>
/// Condition waits (PostgreSQL's <c>poll_query_until</c>): the condition is evaluated again after a short pause until
/// it holds or the timeout passes. A test never depends on how long anything takes, only on the condition becoming
/// true in time; the one bound is <see cref="ClusterOptions.DefaultTimeout"/> unless a timeout is given.
/// <see cref="PostmasterCluster"/>'s waits use this with the cluster's timeout and add its status and log to the
/// failure.
/// </summary>
public static class Wait
{
    /// <summary>The pause between two evaluations of a condition.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(5);

    /// <summary>Waits until <paramref name="condition"/> returns true; throws <see cref="ClusterTimeoutException"/>
    /// naming <paramref name="description"/> ("the marker file to exist") when it does not within
    /// <paramref name="timeout"/>.</summary>
    public static void Until(Func<bool> condition, string description, TimeSpan? timeout = null) =>
        Until(condition, description, timeout ?? ClusterOptions.DefaultTimeout, () => "");

    /// <summary>As <see cref="Until(Func{bool}, string, TimeSpan?)"/>; <paramref name="context"/> is appended to the
    /// failure message (evaluated once, when the wait has failed).</summary>
    internal static void Until(Func<bool> condition, string description, TimeSpan timeout, Func<string> context)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
                throw new ClusterTimeoutException($"timed out after {timeout.TotalSeconds:0.#} s waiting for {description}{context()}");
            Thread.Sleep(PollInterval);
        }
    }
}
