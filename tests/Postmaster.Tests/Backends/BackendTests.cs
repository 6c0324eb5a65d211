using Postmaster.Shmem.Os;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Backends;

/// <summary>Worker backends: static, dynamic, pool, restart policies, limits, supervisor death, user assemblies.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class BackendTests
{
    private static PostmasterCluster Instance(string label, params string[] config) => Clusters.Bare(label, config);

    [Theory]
    [InlineData("fast")]
    [InlineData("immediate")]
    public void Static_workers_start_with_the_instance_and_stop_with_it(string mode)
    {
        using var pm = Instance("static-" + mode, "worker.w.entry = 'idle'", "worker.w.count = 3", "backend_pool_size = 0");
        pm.Start();
        var rows = pm.WaitForBackends(b => b.Count == 3, "three idle workers");
        Assert.Equal(new[] { "w.1", "w.2", "w.3" }, rows.Select(r => r.Name).Order());
        Assert.All(rows, r => Assert.Equal("idle", r.Entry));
        pm.Stop(Enum.Parse<ShutdownMode>(mode, ignoreCase: true));
        Assert.All(rows, r => Assert.False(ProcessControl.IsAlive(r.Pid!.Value), $"backend {r.Pid} is gone after {mode} stop"));
    }

    [Fact]
    public void Smart_shutdown_waits_for_dynamic_workers_and_fast_then_stops_them()
    {
        using var pm = Instance("smart", "worker.w.entry = 'idle'", "backend_pool_size = 1");
        pm.Start();
        Assert.Equal(0, pm.Run("spawn", "--worker", "idle", "--name", "session").ExitCode);
        pm.WaitForBackends(b => b.Count == 2, "the static and the dynamic worker");
        var smart = pm.Run("stop", "-m", "smart", "-t", "1");
        Assert.Equal(1, smart.ExitCode);
        Assert.Contains("does not shut down", smart.Stderr);
        Assert.True(pm.IsRunning, "smart shutdown waits while a dynamic worker runs");
        Assert.Contains(pm.Status().Backends, b => b.Name == "w"); // static workers keep running until then
        pm.Stop(ShutdownMode.Fast);
        Assert.Contains("received smart shutdown request", pm.ServerLog());
        Assert.Contains("received fast shutdown request", pm.ServerLog());
    }

    [Fact]
    public void Smart_shutdown_completes_when_the_dynamic_workers_finish_and_then_stops_static_ones()
    {
        using var pm = Instance("smartdone", "worker.w.entry = 'idle'", "backend_pool_size = 0");
        pm.Start();
        Assert.Equal(0, pm.Run("spawn", "--worker", "exit", "--argument", "0:1500ms", "--name", "job").ExitCode);
        var r = pm.TryStop(ShutdownMode.Smart);
        Assert.True(r.ExitCode == 0, r.ToString());
        var log = pm.ServerLog();
        Assert.True(log.IndexOf("terminating background worker \"w\"", StringComparison.Ordinal) >
                    log.IndexOf("received smart shutdown request", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("on-failure", "1", true)]
    [InlineData("on-failure", "0", false)]
    [InlineData("always", "0", true)]
    [InlineData("never", "1", false)]
    public void Restart_policy_decides_whether_an_exit_is_restarted(string policy, string code, bool restarted)
    {
        using var pm = Instance("policy", "worker.w.entry = 'exit'", $"worker.w.argument = '{code}:200ms'",
            $"worker.w.restart = {policy}", "worker.w.restart_delay = 50ms", "backend_pool_size = 0", "log_min_messages = debug1");
        pm.Start();
        pm.WaitForLog($") exited with exit code {code}");
        if (restarted)
        {
            pm.WaitForLog("background worker \"w\" will be restarted in 50 ms");
            Wait.Until(() => pm.Status().Backends.Any(b => b.Restarts >= 1), "the restarted worker to show restarts = 1");
        }
        pm.Stop();
        // The supervisor decides in the same step that logs the exit, before it handles the later shutdown request.
        var beforeStop = pm.ServerLog()[..pm.ServerLog().IndexOf("received fast shutdown request", StringComparison.Ordinal)];
        Assert.Equal(restarted, beforeStop.Contains("will be restarted"));
    }

    [Fact]
    public void Consecutive_failures_double_the_restart_delay_up_to_the_cap()
    {
        using var pm = Instance("backoff", "worker.w.entry = 'exit'", "worker.w.argument = '1'",
            "worker.w.restart_delay = 40ms", "worker.w.restart_delay_max = 160ms", "backend_pool_size = 0");
        pm.Start();
        Wait.Until(() => CountOf(pm.ServerLog(), "will be restarted in 160 ms") >= 2, "the delay to reach its cap twice");
        var delays = pm.ServerLog().Split('\n').Where(l => l.Contains("will be restarted in"))
            .Select(l => int.Parse(l.Split(" in ")[1].Split(' ')[0])).Take(5).ToList();
        Assert.Equal(new[] { 40, 80, 160, 160 }, delays.Take(4));
        pm.Stop();
    }

    [Fact]
    public void Spawn_from_the_cli_starts_a_dynamic_worker_that_status_lists()
    {
        using var pm = Instance("spawn", "backend_pool_size = 0");
        pm.Start();
        var r = pm.Run("spawn", "--worker", "idle", "--name", "dyn", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var rows = pm.WaitForBackends(b => b.Any(x => x.Name == "dyn"), "the dynamic worker");
        Assert.Contains($"\"pid\": {rows.Single().Pid}", r.Stdout);
        var t = pm.Run("terminate", "dyn");
        Assert.True(t.ExitCode == 0, t.ToString());
        Assert.False(ProcessControl.IsAlive(rows.Single().Pid!.Value));
        Assert.Empty(pm.Status().Backends);
        Assert.DoesNotContain("will be restarted", pm.ServerLog());
        pm.Stop();
    }

    [Fact]
    public void A_backend_can_start_a_dynamic_worker()
    {
        using var pm = Instance("spawn-from-backend", "backend_pool_size = 0");
        pm.Start();
        Assert.Equal(0, pm.Run("spawn", "--worker", "spawn", "--argument", "idle", "--name", "parent").ExitCode);
        var rows = pm.WaitForBackends(b => b.Any(x => x.Name == "parent-child"), "the child started by the parent backend");
        pm.WaitForLog("background worker \"parent\" started dynamic worker \"parent-child\"");
        Assert.Equal(0, pm.Run("terminate", "parent-child").ExitCode);
        Wait.Until(() => pm.Status().Backends.Count == 0, "the parent to finish after its child exited");
        pm.Stop();
    }

    [Fact]
    public void The_pool_hands_out_a_parked_backend_and_refills()
    {
        using var pm = Instance("pool", "backend_pool_size = 2");
        pm.Start();
        Wait.Until(() => pm.Status().Backends.Count(b => b.State == BackendState.Idle) == 2, "two parked pool backends");
        var parked = pm.Status().Backends.Select(b => b.Pid).ToHashSet();
        var r = pm.Run("spawn", "--worker", "idle", "--name", "from-pool", "--json");
        Assert.Equal(0, r.ExitCode);
        var worker = pm.WaitForBackends(b => b.Any(x => x.Name == "from-pool"), "the pooled worker").Single(b => b.Name == "from-pool");
        Assert.Contains(worker.Pid, parked);
        Wait.Until(() => pm.Status().Backends.Count(b => b.State == BackendState.Idle) == 2, "the pool to refill");
        pm.Stop();
    }

    private static string TestChildEntry(string type) =>
        $"{Path.Combine(Paths.OutDir, "testchild", "TestChild.dll")}:Postmaster.TestChild.Workers.{type}";

    /// <summary>Waits for a parked pool member (other than <paramref name="except"/>) and returns it.</summary>
    private static BackendRow ParkedMember(PostmasterCluster pm, int except = 0)
    {
        BackendRow? member = null;
        Wait.Until(() => (member = pm.Status().Backends.FirstOrDefault(b => b.State == BackendState.Idle && b.Pid != except)) is not null,
            "a parked pool member");
        return member!;
    }

    private static bool MapsTestChild(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/maps").Contains("/TestChild.dll", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false; // gone
        }
    }

    [Fact]
    public void Pool_members_preload_the_configured_entries_and_skip_bad_ones()
    {
        string marker = Path.Combine(Path.GetTempPath(), $"pmtest-marker-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using var pm = Instance("preload", "backend_pool_size = 1", "log_min_messages = debug1",
                $"backend_pool_preload = '{TestChildEntry("MarkerWorker")}, /nonexistent/Bad.dll:X.Y'");
            pm.Start();
            var parked = ParkedMember(pm);
            Wait.Until(() => MapsTestChild(parked.Pid!.Value), "the pool member to load TestChild.dll before any request");
            pm.WaitForLog("not preloading worker entry \"/nonexistent/Bad.dll:X.Y\": could not access worker library");

            Assert.Equal(0, pm.Run("spawn", "--worker", TestChildEntry("MarkerWorker"), "--argument", marker, "--name", "m").ExitCode);
            var m = pm.WaitForBackends(b => b.Any(x => x.Name == "m"), "the preloaded worker").Single(x => x.Name == "m");
            Assert.Equal(parked.Pid, m.Pid);
            Wait.Until(() => File.Exists(marker), "the marker file");
            // The CLI refuses a missing library before asking the server (tests/Postmaster.Tests/Cli/SpawnTests.cs).
            var bad = pm.Run("spawn", "--worker", "/nonexistent/Bad.dll:X.Y", "--name", "bad");
            Assert.Equal(1, bad.ExitCode);
            Assert.Contains("could not access worker library \"/nonexistent/Bad.dll\"", bad.Stderr);
            pm.Stop();
            Assert.Equal($"started {m.Slot}\nstopped\nexit callback\n", File.ReadAllText(marker));
        }
        finally
        {
            File.Delete(marker);
        }
    }

    [Fact]
    public void Two_copies_of_a_worker_library_in_different_directories_run_from_the_same_pool()
    {
        // Two deployments of one library (same assembly name, different paths), both preloaded by every pool member;
        // the second directory also carries its own copies of the worker SDK and the engine, which must not be used.
        string root = Directory.CreateTempSubdirectory("pmtest-twolibs-").FullName;
        try
        {
            string src = Path.Combine(Paths.OutDir, "testchild");
            string[] dirs = [Path.Combine(root, "v1"), Path.Combine(root, "v2")];
            foreach (var d in dirs)
            {
                Directory.CreateDirectory(d);
                File.Copy(Path.Combine(src, "TestChild.dll"), Path.Combine(d, "TestChild.dll"));
            }
            foreach (var api in new[] { "Postmaster.Workers.dll", "Postmaster.Shmem.dll" })
                File.Copy(Path.Combine(src, api), Path.Combine(dirs[1], api));
            string[] entries = dirs.Select(d => $"{Path.Combine(d, "TestChild.dll")}:Postmaster.TestChild.Workers.MarkerWorker").ToArray();
            string[] markers = dirs.Select(d => Path.Combine(d, "marker")).ToArray();
            using var pm = Instance("twolibs", "backend_pool_size = 2", "log_min_messages = debug1",
                $"backend_pool_preload = '{entries[0]}, {entries[1]}'");
            pm.Start();
            var parked = ParkedMember(pm);
            Wait.Until(() => File.ReadAllText($"/proc/{parked.Pid}/maps").Contains(Path.Combine(dirs[1], "TestChild.dll")),
                "a pool member to preload both copies");
            for (int i = 0; i < 2; i++)
                Assert.Equal(0, pm.Run("spawn", "--worker", entries[i], "--argument", markers[i], "--name", $"m{i}").ExitCode);
            Wait.Until(() => markers.All(File.Exists), "both copies' workers to run");
            Assert.DoesNotContain("not preloading", pm.ServerLog());
            pm.Stop();
            Assert.All(markers, m => Assert.EndsWith("stopped\nexit callback\n", File.ReadAllText(m)));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void A_refilled_pool_member_preloads_the_entry_spawned_last()
    {
        string stamps = Directory.CreateTempSubdirectory("pmtest-stamps-").FullName;
        try
        {
            using var pm = Instance("preload-learn", "backend_pool_size = 1");
            pm.Start();
            var first = ParkedMember(pm);
            Assert.False(MapsTestChild(first.Pid!.Value), "nothing asked for TestChild.dll yet");
            var spawned = pm.Run("spawn", "--worker", TestChildEntry("StampWorker"), "--argument", $"exit:{stamps}", "--name", "s");
            Assert.True(spawned.ExitCode == 0, spawned.ToString());
            Wait.Until(() => Directory.EnumerateFiles(stamps).Any(f => !f.EndsWith(".tmp", StringComparison.Ordinal)), "the stamp worker to run");
            var refill = ParkedMember(pm, except: first.Pid!.Value);
            Wait.Until(() => MapsTestChild(refill.Pid!.Value), "the refilled member to preload the entry spawned last");
            pm.Stop();
        }
        finally
        {
            Directory.Delete(stamps, recursive: true);
        }
    }

    /// <summary>docs/architecture.md, "Start-up without the JIT": a backend running the built-in idle worker runs
    /// ReadyToRun code only, so the JIT (libclrjit.so) is never mapped. Checked once a pool member has parked too (it
    /// starts after the static workers), which gives the idle worker time to settle; a JIT loaded after the check would
    /// go unnoticed here (the resources bench reads the mappings after 3 s).</summary>
    [Fact]
    public void An_idle_built_in_worker_runs_without_the_JIT()
    {
        using var pm = Instance("nojit", "worker.i.entry = 'idle'", "backend_pool_size = 1");
        pm.Start();
        var status = pm.WaitForStatus(s => s.Backends.Any(b => b.Name == "i" && b.State == BackendState.Running) && s.Backends.Any(b => b.Pool),
            "the idle worker and a parked pool member");
        int pid = status.Backends.Single(b => b.Name == "i").Pid!.Value;
        Assert.False(File.ReadAllText($"/proc/{pid}/maps").Contains("libclrjit.so", StringComparison.Ordinal),
            $"the idle worker (PID {pid}) has the JIT mapped");
        pm.Stop();
    }

    [Fact]
    public void Max_backends_bounds_every_backend()
    {
        using var pm = Instance("max", "max_backends = 2", "backend_pool_size = 0");
        pm.Start();
        Assert.Equal(0, pm.Run("spawn", "--worker", "idle", "--name", "a").ExitCode);
        Assert.Equal(0, pm.Run("spawn", "--worker", "idle", "--name", "b").ExitCode);
        var third = pm.Run("spawn", "--worker", "idle", "--name", "c");
        Assert.Equal(1, third.ExitCode);
        Assert.Contains("too many backends", third.Stderr);
        Assert.Equal(2, pm.Status().Backends.Count);
        pm.Stop();
    }

    [Fact]
    public void More_static_workers_than_max_backends_is_refused_at_start()
    {
        using var pm = Instance("maxstatic", "max_backends = 2", "worker.w.entry = 'idle'", "worker.w.count = 3");
        var r = pm.Run("start");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("too many background workers", r.Stderr);
        Assert.Contains("max_backends", r.Stderr);
    }

    [Fact]
    public void Backends_exit_by_themselves_when_the_postmaster_is_killed_and_the_next_start_succeeds()
    {
        using var pm = Instance("pmdeath", "worker.w.entry = 'idle'", "worker.w.count = 2", "backend_pool_size = 1");
        pm.Start();
        pm.WaitForBackends(b => b.Count == 2, "two workers");
        Wait.Until(() => pm.Status().Backends.Count == 3, "the two workers and the pool member");
        var all = pm.Status().Backends.Select(b => b.Pid!.Value).ToList();
        pm.KillPostmaster();
        Wait.Until(() => all.All(p => !ProcessControl.IsAlive(p)), "every backend to exit after the postmaster died");
        pm.Start();
        pm.WaitForBackends(b => b.Count == 2, "the workers of the new instance");
        pm.Stop();
    }

    [Fact]
    public void A_worker_that_ignores_stop_requests_is_ended_after_the_postmaster_dies()
    {
        using var pm = Instance("pmdeath-stubborn", $"worker.s.entry = '{TestChildEntry("StubbornWorker")}'", "backend_pool_size = 0");
        pm.Start();
        var s = pm.WaitForBackends(b => b.Count == 1, "the stubborn worker").Single();
        pm.KillPostmaster();
        pm.WaitForLog("terminating background worker \"s\" due to unexpected postmaster exit");
        Wait.Until(() => !ProcessControl.IsAlive(s.Pid!.Value), "the worker to be ended after the grace period");
        pm.Start();
        pm.Stop();
    }

    [Fact]
    public void The_dsm_control_segment_is_attached_on_first_use_only()
    {
        using var pm = Instance("lazy-dsm", "dynamic_shared_memory_type = posix", "worker.i.entry = 'idle'",
            "worker.h.entry = 'dsm-hold'", "worker.h.argument = '1:64kB'", "backend_pool_size = 0");
        pm.Start();
        var rows = pm.WaitForBackends(b => b.Count == 2 && b.Any(x => x.Name == "h" && x.DsmSegments == 1), "idle and dsm-hold");
        static string Maps(int pid) => File.ReadAllText($"/proc/{pid}/maps");
        Assert.DoesNotContain("/dev/shm/pm.", Maps(rows.Single(r => r.Name == "i").Pid!.Value));
        Assert.Contains(".ctl.", Maps(rows.Single(r => r.Name == "h").Pid!.Value));
        pm.Stop();
    }

    [Fact]
    public void A_user_worker_is_loaded_from_an_assembly_and_runs_its_exit_callbacks()
    {
        string marker = Path.Combine(Path.GetTempPath(), $"pmtest-marker-{Environment.ProcessId}-{Guid.NewGuid():N}");
        string dll = Path.Combine(Paths.OutDir, "testchild", "TestChild.dll");
        try
        {
            using var pm = Instance("userworker", $"worker.u.entry = '{dll}:Postmaster.TestChild.Workers.MarkerWorker'",
                $"worker.u.argument = '{marker}'", "backend_pool_size = 0");
            pm.Start();
            var u = pm.WaitForBackends(b => b.Count == 1, "the user worker").Single();
            Wait.Until(() => File.Exists(marker), "the marker file");
            pm.Stop();
            Assert.Equal($"started {u.Slot}\nstopped\nexit callback\n", File.ReadAllText(marker));
        }
        finally
        {
            File.Delete(marker);
        }
    }

    [Theory]
    [InlineData("TESTCHILD:Postmaster.TestChild.Workers.Missing", "could not find type \"Postmaster.TestChild.Workers.Missing\"")]
    [InlineData("TESTCHILD:Postmaster.TestChild.Workers.NotAWorker",
        "does not implement Postmaster.Workers.IBackgroundWorker or Postmaster.Workers.IAsyncBackgroundWorker")]
    [InlineData("TESTCHILD:Postmaster.TestChild.Workers.TwoFacedWorker",
        "implements both Postmaster.Workers.IBackgroundWorker and Postmaster.Workers.IAsyncBackgroundWorker")]
    [InlineData("SHMEM:Postmaster.Shmem.Text.Utf8Text", "does not implement Postmaster.Workers.IBackgroundWorker or")] // large: found by name
    [InlineData("SHMEM:Postmaster.Shmem.NoSuchType", "could not find type \"Postmaster.Shmem.NoSuchType\"")]
    public void A_bad_entry_point_fails_with_a_clear_error(string entry, string message)
    {
        entry = entry.Replace("TESTCHILD", Path.Combine(Paths.OutDir, "testchild", "TestChild.dll"))
            .Replace("SHMEM", Path.Combine(Paths.OutDir, "Postmaster.Shmem.dll"));
        using var pm = Instance("badentry", "backend_pool_size = 0");
        pm.Start();
        Assert.Equal(0, pm.Run("spawn", "--worker", entry, "--name", "bad").ExitCode);
        pm.WaitForLog(message);
        pm.WaitForLog("background worker \"bad\"");
        Wait.Until(() => pm.Status().Backends.Count == 0, "the failed worker to be gone (dynamic workers are not restarted)");
        pm.Stop();
    }

    [Theory]
    [InlineData("/nonexistent/Worker.dll:X.Y", "could not access worker library \"/nonexistent/Worker.dll\": No such file or directory")]
    [InlineData("no-such-builtin", "invalid worker entry \"no-such-builtin\": no built-in worker has this name")]
    public void An_entry_that_can_never_start_is_refused_before_any_process_starts(string entry, string message)
    {
        using var pm = Instance("neverentry", "backend_pool_size = 0");
        pm.Start();
        var r = pm.Run("spawn", "--worker", entry, "--name", "bad");
        Assert.NotEqual(0, r.ExitCode); // 2 (usage) for an unknown built-in name, 1 for a missing file
        Assert.Contains(message, r.Stderr);
        Assert.DoesNotContain("started worker", r.Stdout);
        Assert.Empty(pm.Status().Backends);
        pm.Stop();
    }

    [Fact]
    public void Exit_status_tells_an_exit_code_from_a_signal()
    {
        using var pm = Instance("status137", "backend_pool_size = 0", "crash_recovery = reconcile");
        pm.Start();
        Assert.Equal(0, pm.Run("spawn", "--worker", "exit", "--argument", "137", "--name", "x137").ExitCode);
        Assert.Equal(0, pm.Run("spawn", "--worker", "exit", "--argument", "KILL", "--name", "xkill").ExitCode);
        pm.WaitForLog("background worker \"x137\" (PID");
        pm.WaitForLog("background worker \"xkill\" (PID");
        Assert.Matches("background worker \"x137\" \\(PID \\d+\\) exited with exit code 137", pm.ServerLog());
        Assert.Matches("background worker \"xkill\" \\(PID \\d+\\) was terminated by signal 9: Killed", pm.ServerLog());
        pm.Stop();
    }

    [Fact]
    public void Reload_starts_added_workers_and_stops_removed_ones()
    {
        using var pm = Instance("reloadworkers", "worker.a.entry = 'idle'", "backend_pool_size = 0");
        pm.Start();
        var a = pm.WaitForBackends(b => b.Count == 1, "worker a").Single();
        File.WriteAllLines(pm.ConfigPath, File.ReadAllLines(pm.ConfigPath).Where(l => !l.StartsWith("worker.a")).Append("worker.b.entry = 'idle'"));
        Assert.Equal(0, pm.Run("reload").ExitCode);
        pm.WaitForBackends(b => b.Count == 1 && b[0].Name == "b", "worker b alone");
        Assert.False(ProcessControl.IsAlive(a.Pid!.Value));
        pm.WaitForLog("stopping background worker \"a\": it was removed from the configuration");
        pm.Stop();
    }

    private static int CountOf(string text, string what) => text.Split(what).Length - 1;
}
