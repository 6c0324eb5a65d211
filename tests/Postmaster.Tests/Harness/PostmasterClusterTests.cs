using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Os;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Harness;

/// <summary>The harness itself: its waits fail with what they waited for, it signals only the instance's own
/// processes, its leak check sees what the instance's naming covers, and disposal cleans up after a failed test.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class PostmasterClusterTests
{
    [Fact]
    public void A_wait_that_times_out_names_its_condition_the_last_status_and_the_log_tail()
    {
        using var pm = PostmasterCluster.Create(new ClusterOptions { Name = "waitfail", Timeout = TimeSpan.FromSeconds(1) });
        Directory.CreateDirectory(Path.GetDirectoryName(pm.LogPath)!);
        File.WriteAllLines(pm.LogPath, ["first line", "second line"]);
        Assert.False(pm.Status().Running);
        var e = Assert.Throws<ClusterTimeoutException>(() => pm.WaitForLog("third line"));
        Assert.StartsWith("timed out after 1 s waiting for the server log to contain \"third line\"", e.Message);
        Assert.Contains("--- last status ---\n{", e.Message);
        Assert.Contains("\"running\": false", e.Message);
        Assert.Contains($"--- server log, last 30 lines ({pm.LogPath}) ---\nfirst line\nsecond line", e.Message);
    }

    [Fact]
    public void Waiting_for_a_reconcile_fails_at_once_when_the_server_restarts_instead()
    {
        using var pm = PostmasterCluster.StartNew(new ClusterOptions
        {
            Name = "notreconciled",
            Settings = { ["crash_recovery"] = "restart_all" },
            Workers = { new WorkerSpec("w", "idle") },
        });
        pm.Kill(pm.WaitForBackends(b => b.Count == 1, "the worker").Single());
        var e = Assert.Throws<ClusterException>(() => pm.WaitForReconcile());
        Assert.StartsWith("a full crash restart happened where a reconcile was expected", e.Message);
        Assert.Equal(1, pm.WaitForFullRestart().FullRestarts); // the same kill, counted once
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Signals_go_only_to_backends_of_this_instance()
    {
        using var pm = PostmasterCluster.StartNew(new ClusterOptions { Name = "mine", Workers = { new WorkerSpec("w", "idle") } });
        using var other = PostmasterCluster.StartNew(new ClusterOptions { Name = "theirs", Workers = { new WorkerSpec("w", "idle") } });
        var theirs = other.WaitForBackends(b => b.Count == 1, "the other instance's worker").Single();
        using var stranger = ChildProcess.Start("/bin/sleep", ["600"]);

        Assert.Contains("refusing to signal pid 1", Assert.Throws<ClusterException>(() => pm.Kill(1)).Message);
        Assert.Contains("refusing to signal pid 0", Assert.Throws<ClusterException>(() => pm.Kill(0)).Message);
        foreach (int pid in new[] { stranger.Pid, Environment.ProcessId, theirs.Pid!.Value, other.PostmasterPid })
            Assert.Contains($"process {pid} is not a backend of this instance", Assert.Throws<ClusterException>(() => pm.Kill(pid)).Message);
        Assert.True(ProcessControl.IsAlive(stranger.Pid));
        Assert.True(ProcessControl.IsAlive(theirs.Pid.Value));

        var mine = pm.WaitForBackends(b => b.Count == 1, "this instance's worker").Single();
        pm.Kill(mine);
        pm.WaitForReconcile();
        Assert.Equal(theirs.Pid, other.WaitForBackends(b => b.Count == 1, "the other worker, untouched").Single().Pid);
        pm.Stop();
        other.Stop();
        pm.AssertNothingLeaked();
        other.AssertNothingLeaked();
    }

    [Fact]
    public void The_leak_check_finds_a_DSM_object_made_by_hand_with_the_instances_name_and_disposal_removes_it()
    {
        var pm = PostmasterCluster.StartNew(new ClusterOptions { Name = "dsmleak" });
        var config = DsmConfig.For(DsmType.Posix, pm.DataDirectory, FileStat.TryStat(pm.DataDirectory)!.Value);
        string name = "/" + config.Names.PosixFilePrefix + "4242";
        try
        {
            pm.Stop();
            pm.AssertNothingLeaked();
            File.WriteAllText("/dev/shm" + name, "left behind");
            var e = Assert.Throws<ClusterException>(() => pm.AssertNothingLeaked());
            Assert.Contains($"dynamic shared memory posix \"{name}\"", e.Message);
        }
        finally
        {
            try
            {
                pm.Dispose();
            }
            catch (ClusterException e)
            {
                Assert.Contains(name, e.Message); // reported, unless the harness saw a failure (the Throws above) first
            }
        }
        Assert.False(File.Exists("/dev/shm" + name), "disposal removes what the instance's naming covers");
        Assert.Empty(DsmOrphanCleanup.FindTagged(config));
    }

    [Fact]
    public void Disposal_after_a_failed_test_keeps_the_failure_and_leaves_nothing_behind()
    {
        var pm = PostmasterCluster.StartNew(new ClusterOptions
        {
            Name = "failed",
            Settings = { ["backend_pool_size"] = "1", ["dynamic_shared_memory_type"] = "sysv" },
            Workers = { new WorkerSpec("h", "dsm-hold", "1:64kB:pin"), new WorkerSpec("i", "idle") { Count = 2 } },
        });
        var status = pm.WaitForStatus(s => s.Backends.Count == 4 && s.RunningBackends.Any(b => b.DsmSegments == 1), "every backend");
        var config = DsmConfig.For(DsmType.SysV, pm.DataDirectory, FileStat.TryStat(pm.DataDirectory)!.Value);
        Assert.Equal(2, DsmOrphanCleanup.FindTagged(config).Count); // the control segment and the pinned one
        var segment = status.SharedMemory!;

        void FailingTest()
        {
            using (pm)
                throw new InvalidOperationException("the test failed");
        }
        var failure = Assert.Throws<InvalidOperationException>(FailingTest);

        Assert.Equal("the test failed", failure.Message);
        Assert.All(status.Backends.Append(new BackendRow { Pid = status.Pid }), b => Assert.False(ProcessControl.IsAlive(b.Pid!.Value)));
        Assert.False(TestIpc.SegmentExists(segment.Type!, segment.Key!.Value, segment.Id!.Value));
        Assert.Empty(DsmOrphanCleanup.FindTagged(config));
        Assert.False(Directory.Exists(pm.DataDirectory));
    }

    [Fact]
    public void Disposal_removes_what_a_killed_postmaster_left()
    {
        var pm = PostmasterCluster.StartNew(new ClusterOptions { Name = "killed", Workers = { new WorkerSpec("w", "idle") } });
        var status = pm.WaitForStatus(s => s.RunningBackends.Count == 1, "the worker");
        pm.KillPostmaster();
        pm.WaitUntilStopped();
        Assert.Contains(pm.FindLeaks(), l => l.Contains("main shared memory segment", StringComparison.Ordinal));
        var segment = status.SharedMemory!;
        try
        {
            pm.Dispose();
        }
        catch (ClusterException e)
        {
            Assert.Contains($"main shared memory segment (key {segment.Key}, ID {segment.Id})", e.Message);
        }
        Assert.False(TestIpc.SegmentExists(segment.Type!, segment.Key!.Value, segment.Id!.Value));
        Assert.False(ProcessControl.IsAlive(status.RunningBackends.Single().Pid!.Value));
        Assert.False(Directory.Exists(pm.DataDirectory));
    }

    [Fact]
    public void Settings_and_worker_arguments_are_written_as_quoted_values()
    {
        using var pm = PostmasterCluster.StartNew(new ClusterOptions
        {
            Name = "quoting",
            Settings = { ["log_min_messages"] = "debug1" },
            Workers = { new WorkerSpec("w", "idle", @"it's a \ test") { RestartDelay = TimeSpan.FromMilliseconds(1.5) } },
        });
        var conf = File.ReadAllText(pm.ConfigPath);
        Assert.Contains("log_min_messages = 'debug1'", conf);
        Assert.Contains(@"worker.w.argument = 'it''s a \\ test'", conf);
        Assert.Contains("worker.w.restart_delay = '1500us'", conf);
        Assert.DoesNotContain("worker.demo", conf);
        Assert.Equal(WorkerState.Running, pm.WaitForWorker("w", WorkerState.Running).Single().State);
        pm.Stop();
    }

    [Fact]
    public void The_binary_is_the_explicit_path_else_POSTMASTER_OUT_else_PATH_and_a_miss_names_all_three()
    {
        string real = PostmasterBinary.Locate();
        string dir = Path.GetDirectoryName(real)!;
        Assert.Equal(real, PostmasterBinary.Locate(dir, outDir: "/nonexistent", searchPath: null));
        Assert.Equal(real, PostmasterBinary.Locate(null, outDir: dir, searchPath: "/nonexistent"));
        Assert.Equal(real, PostmasterBinary.Locate(null, outDir: null, searchPath: $"/nonexistent:{dir}"));
        var explicitMiss = Assert.Throws<ClusterException>(() => PostmasterBinary.Locate("/nonexistent/postmaster", dir, dir));
        Assert.Contains("ClusterOptions.PostmasterPath (\"/nonexistent/postmaster\") names no postmaster executable", explicitMiss.Message);
        var outMiss = Assert.Throws<ClusterException>(() => PostmasterBinary.Locate(null, "/nonexistent", dir));
        Assert.Contains("POSTMASTER_OUT (\"/nonexistent\") names no postmaster executable", outMiss.Message);
        var none = Assert.Throws<ClusterException>(() => PostmasterBinary.Locate(null, null, "/nonexistent"));
        Assert.Equal("cannot find the postmaster executable: set ClusterOptions.PostmasterPath to it, or the environment variable " +
                     "POSTMASTER_OUT to the directory that holds it, or put \"postmaster\" on PATH", none.Message);
    }
}
