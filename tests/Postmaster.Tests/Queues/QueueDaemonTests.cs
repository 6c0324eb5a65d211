using System.Text.RegularExpressions;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Queues;

/// <summary>
/// The SDK's queue in a running postmaster, in the shape of PostgreSQL's parallel query: a configured worker
/// (TestChild's QueueLeaderWorker) creates a queue, starts a dynamic worker (QueueSenderWorker) with the queue's
/// handle as its argument and receives what it sends.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class QueueDaemonTests
{
    private static string Entry(string type) =>
        $"{Path.Combine(Paths.OutDir, "testchild", "TestChild.dll")}:Postmaster.TestChild.Workers.{type}";

    private static PostmasterCluster Instance(string label, string argument) =>
        Clusters.Bare(label, $"worker.leader.entry = '{Entry("QueueLeaderWorker")}'", $"worker.leader.argument = '{argument}'",
            "worker.leader.restart = never");

    /// <summary>What the sender's first <paramref name="count"/> messages add up to (QueueSenderWorker.Message).</summary>
    private static long Bytes(int count) => Enumerable.Range(0, count).Sum(i => (long)(i * 997 % 20_000));

    [Fact]
    public void A_worker_receives_intact_what_the_dynamic_worker_it_started_sends_and_nothing_is_left_behind()
    {
        using var pm = Instance("mq-leader", "40:normal");
        pm.Start();
        var done = pm.WaitForLog(new Regex(@"queue leader received 40 messages \((\d+) bytes, all intact\) from worker (\d+), then Detached"));
        Assert.Equal(Bytes(40), long.Parse(done.Groups[1].Value));
        Assert.Matches($@"\[{done.Groups[2].Value}\] LOG:  queue sender sent 40 messages", pm.ServerLog());
        pm.WaitForLog("queue leader released its queue");
        pm.WaitUntil(() => pm.Shmem().DsmSegments.Count == 0, "the queue's segment to be destroyed");
        Assert.Single(pm.Status().Backends, b => b.Name == "leader");
        pm.Stop();
        Assert.DoesNotContain("FATAL", pm.ServerLog());
    }

    [Fact]
    public void A_dynamic_sender_killed_mid_message_is_reconciled_and_the_receiving_worker_sees_detached_and_keeps_running()
    {
        using var pm = Instance("mq-killed", "5:stall");
        pm.Start();
        pm.WaitForLog("queue sender stalled mid-message");
        var before = pm.Status().Backends;
        var leader = before.Single(b => b.Name == "leader");
        var sender = before.Single(b => b.Name == "queue-sender");
        pm.Kill(sender);
        pm.WaitForReconcile();
        pm.WaitForLog($"queue leader received 5 messages ({Bytes(5)} bytes, all intact) from worker {sender.Pid}, then Detached");
        pm.WaitForLog("queue leader released its queue");
        var after = pm.Status();
        Assert.Equal(0, after.FullRestarts);
        Assert.Equal(leader.Pid, after.Backends.Single(b => b.Name == "leader").Pid); // the same process, still running
        pm.WaitUntil(() => pm.Shmem().DsmSegments.Count == 0, "the queue's segment to be destroyed");
        pm.Stop();
    }
}
