using System.Text.RegularExpressions;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Sdk;

/// <summary>Async workers (IAsyncBackgroundWorker) run as configured workers with the synchronous contract: 0 is done,
/// an exception after an await is FATAL with its stack trace and restarted per policy, a stop cancels the token.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class AsyncWorkerTests
{
    private static string Entry(string type) =>
        $"{Path.Combine(Paths.OutDir, "testchild", "TestChild.dll")}:Postmaster.TestChild.Workers.{type}";

    private static PostmasterCluster Instance(string label, string argument, params string[] config) =>
        Clusters.Bare(label, [$"worker.a.entry = '{Entry("AsyncWorker")}'", $"worker.a.argument = '{argument}'", .. config]);

    [Fact]
    public void An_async_worker_that_returns_0_after_an_await_is_done()
    {
        using var pm = Instance("async-done", "done", "worker.a.restart = on-failure");
        pm.Start();
        pm.WaitForWorker("a", WorkerState.Done);
        pm.WaitForLog("async worker \"a\" is done");
        Assert.DoesNotContain("FATAL", pm.ServerLog());
        pm.Stop();
    }

    [Fact]
    public void An_async_worker_that_throws_after_an_await_is_fatal_with_its_stack_trace_and_restarted()
    {
        using var pm = Instance("async-throw", "throw", "worker.a.restart = on-failure", "worker.a.restart_delay = 50ms");
        pm.Start();
        pm.WaitForStatus(s => s.InstancesOf("a") is [{ Restarts: >= 1 }], "the failed async worker to be restarted");
        pm.Stop();
        var log = pm.ServerLog();
        var fatal = Regex.Match(log, @"\[(\d+)\] FATAL:  background worker ""a"" failed: InvalidOperationException: async worker failed after an await\n");
        Assert.True(fatal.Success, log);
        string pid = fatal.Groups[1].Value;
        // Every line of the trace carries the backend's prefix, the worker's frame first.
        var context = log[(fatal.Index + fatal.Length)..].Split('\n').TakeWhile(l => l.Contains($"[{pid}] CONTEXT:  ")).ToList();
        Assert.True(context.Count >= 2, log);
        Assert.Contains("at Postmaster.TestChild.Workers.AsyncWorker.RunAsync(", context[0]);
        Assert.Contains(context, l => l.Contains("at Postmaster.Backend.BackendHost."));
        Assert.Matches(@"background worker ""a"" \(PID \d+\) exited with exit code 1", log);
    }

    [Fact]
    public void A_stop_cancels_the_token_an_async_worker_waits_on()
    {
        using var pm = Instance("async-wait", "wait");
        pm.Start();
        pm.WaitForLog("async worker \"a\" is waiting");
        pm.Terminate("a");
        pm.WaitForWorker("a", WorkerState.Stopped);
        var log = pm.ServerLog();
        Assert.Contains("FATAL:  terminating background worker \"a\" due to administrator command", log);
        Assert.DoesNotContain("failed: ", log);
        pm.Stop();
    }
}
