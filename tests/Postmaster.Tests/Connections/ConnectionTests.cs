using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Connections;

/// <summary>Client connections end to end: the postmaster listens (TCP on IPv4 and IPv6 loopback, a Unix-domain
/// socket with its lock file), accepts, and hands each connection to a connection backend that runs TestChild's echo
/// worker; sessions reuse clean backends up to their limit; over max_connections a connection is refused with the
/// configured line; a crash without a lock ends only its own client's session.</summary>
public sealed class ConnectionTests
{
    private static string EchoEntry =>
        $"{Path.Combine(Paths.OutDir, "testchild", "TestChild.dll")}:Postmaster.TestChild.Workers.EchoConnectionWorker";

    private static PostmasterCluster Server(string name, int port, params string[] extra) =>
        Clusters.Bare(name, new[]
        {
            $"connection_worker = '{EchoEntry}'", $"port = {port}", "backend_pool_size = 1", "max_backends = 40",
        }.Concat(extra).ToArray());

    [Fact]
    public void A_connection_is_served_by_a_backend_over_tcp_ipv6_and_a_unix_socket()
    {
        int port = EchoClient.FreePort();
        using var pm = Server("conn-basic", port, "unix_socket_directories = '.'", "unix_socket_permissions = 0700",
            "connection_worker_argument = 'a b  c'");
        pm.Start();
        var lines = File.ReadAllLines(Path.Combine(pm.DataDirectory, "postmaster.pid"));
        Assert.Equal(port.ToString(), lines[3]);
        Assert.Equal(pm.DataDirectory, lines[4]);
        Assert.Equal("localhost", lines[5]);
        string socket = Path.Combine(pm.DataDirectory, $".s.POSTMASTER.{port}");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(socket));
        Assert.True(File.Exists(socket + ".lock"));

        using (var v4 = EchoClient.Tcp(port))
        {
            Assert.StartsWith("hello session", v4.Greeting);
            Assert.Contains("127.0.0.1:", v4.Greeting);
            Assert.Equal("ping", v4.Ask("ping"));
            Assert.Equal("argument [a b  c]", v4.Ask("argument"));
            var row = pm.Status().Backends.Single(b => b.Pid == v4.Session.Pid);
            Assert.Equal("connection-host", row.Entry);
            Assert.NotNull(row.Session);
            Assert.Equal(v4.Session.Id, row.Session!.Id);
            Assert.StartsWith("127.0.0.1:", row.Session.Client);
            var slot = pm.Shmem().BackendSlots.Single(s => s.Pid == v4.Session.Pid);
            Assert.Equal(row.Session, slot.Session);
        }
        using (var v6 = EchoClient.Tcp(port, System.Net.IPAddress.IPv6Loopback))
            Assert.Contains("[::1]:", v6.Greeting);
        using (var unix = EchoClient.Unix(socket))
        {
            Assert.Contains("[local]", unix.Greeting);
            Assert.Equal("x", unix.Ask("x"));
        }
        pm.Stop();
        Assert.False(File.Exists(socket), "the socket file is removed at shutdown");
        Assert.False(File.Exists(socket + ".lock"), "the socket's lock file is removed at shutdown");
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Sessions_reuse_a_clean_backend_until_max_sessions_per_backend()
    {
        int port = EchoClient.FreePort();
        using var pm = Server("conn-reuse", port, "spare_connection_backends = 1", "max_sessions_per_backend = 3");
        pm.Start();
        var byPid = new Dictionary<int, List<int>>();
        for (int i = 0; i < 9; i++)
        {
            using var c = EchoClient.Tcp(port);
            var (_, number, pid) = c.Session;
            Assert.Equal("quit-test", c.Ask("quit-test"));
            c.Send("quit");
            Assert.True(c.IsClosedByServer());
            byPid.TryAdd(pid, new List<int>());
            byPid[pid].Add(number);
        }
        Assert.All(byPid.Values, numbers => Assert.True(numbers.Count <= 3 && numbers.SequenceEqual(numbers.Order())));
        Assert.True(byPid.Values.Any(n => n.Count > 1), "a backend served more than one session");
        Assert.True(byPid.Count >= 3, "no backend served more than 3 sessions");
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Connection_backends_run_under_connection_scheduling_policy_and_a_reload_applies_to_new_ones()
    {
        int port = EchoClient.FreePort();
        using var pm = Server("conn-sched", port, "spare_connection_backends = 1", "max_sessions_per_backend = 1");
        pm.Start();
        using (var c = EchoClient.Tcp(port))
        {
            // The default, batch: every thread of the backend, those the runtime started before Main included.
            Assert.All(ThreadPolicies(c.Session.Pid), p => Assert.Equal(SchedBatch, p));
            Assert.Equal("x", c.Ask("x"));
        }
        Assert.Equal(SchedOther, ThreadPolicies(pm.PostmasterPid).Distinct().Single()); // the postmaster keeps Linux's default

        pm.Configure("connection_scheduling_policy", "other");
        pm.Reload();
        // Backends started before the reload keep batch; each session here ends its backend (max_sessions_per_backend
        // = 1), so the ones started after it come soon, and from then on every one runs under SCHED_OTHER.
        bool sawOther = false;
        for (int i = 0; i < 20; i++)
        {
            using var c = EchoClient.Tcp(port);
            var policies = ThreadPolicies(c.Session.Pid).Distinct().ToArray();
            Assert.Single(policies);
            if (sawOther)
                Assert.Equal(SchedOther, policies[0]);
            sawOther |= policies[0] == SchedOther;
            Assert.Equal("y", c.Ask("y"));
        }
        Assert.True(sawOther, "no connection backend started after the reload ran under SCHED_OTHER");
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    private const int SchedOther = 0;
    private const int SchedBatch = 3;

    /// <summary>The scheduling policy of each thread of <paramref name="pid"/> (field 41 of /proc/PID/task/TID/stat).</summary>
    private static List<int> ThreadPolicies(int pid)
    {
        var policies = new List<int>();
        foreach (string task in Directory.GetDirectories($"/proc/{pid}/task"))
        {
            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(task, "stat"));
            }
            catch (IOException)
            {
                continue; // the thread ended
            }
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // fields from 3 (state) on
            policies.Add(int.Parse(fields[41 - 3]));
        }
        Assert.NotEmpty(policies);
        return policies;
    }

    [Fact]
    public void A_session_that_throws_or_keeps_a_lock_ends_its_backend()
    {
        int port = EchoClient.FreePort();
        using var pm = Server("conn-unclean", port, "spare_connection_backends = 1");
        pm.Start();
        int thrower;
        using (var c = EchoClient.Tcp(port))
        {
            thrower = c.Session.Pid;
            c.Send("throw");
            Assert.True(c.IsClosedByServer());
        }
        Wait.Until(() => !pm.Status().Backends.Any(b => b.Pid == thrower), "the backend whose session threw to exit");
        int locker;
        using (var c = EchoClient.Tcp(port))
        {
            locker = c.Session.Pid;
            Assert.Equal("locked", c.Ask("lock conn-test"));
            c.Send("quit");
            Assert.True(c.IsClosedByServer());
        }
        Wait.Until(() => !pm.Status().Backends.Any(b => b.Pid == locker), "the backend that kept a lock to exit");
        using (var c = EchoClient.Tcp(port))
        {
            Assert.NotEqual(thrower, c.Session.Pid);
            Assert.NotEqual(locker, c.Session.Pid);
            Assert.Equal("locked", c.Ask("lock conn-test")); // released by the exit path of the backend that kept it
            Assert.Equal("unlocked", c.Ask("unlock conn-test"));
        }
        Assert.Contains("failed in session", File.ReadAllText(pm.LogPath));
        Assert.Contains("is not reused", File.ReadAllText(pm.LogPath));
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Idle_backends_accept_new_connections_themselves_even_while_the_postmaster_is_stopped()
    {
        int port = EchoClient.FreePort();
        using var pm = Server("conn-direct", port, "spare_connection_backends = 3", "unix_socket_directories = '.'");
        pm.Start();
        using (var first = EchoClient.Tcp(port))
            Assert.Equal("warm", first.Ask("warm"));
        // Every idle connection backend holds a ticket (the acceptor publishes the number after sending them).
        Lifecycle.MetricsTests.WaitForMetrics(pm, m => m["postmaster_connection_backends_accepting"] >= 3 && m["postmaster_connections"] == 0,
            "three idle connection backends accepting");
        var clients = new List<EchoClient>();
        pm.SignalPostmaster(UnixSignal.SIGSTOP);
        try
        {
            // The postmaster cannot run now: each of these is accepted and served by an idle backend on its own.
            clients.Add(EchoClient.Tcp(port));
            clients.Add(EchoClient.Tcp(port, System.Net.IPAddress.Loopback));
            clients.Add(EchoClient.Unix(Path.Combine(pm.DataDirectory, $".s.POSTMASTER.{port}")));
            for (int i = 0; i < clients.Count; i++)
                Assert.Equal($"while stopped {i}", clients[i].Ask($"while stopped {i}"));
            Assert.Equal(3, clients.Select(c => c.Session.Pid).Distinct().Count());
        }
        finally
        {
            pm.SignalPostmaster(UnixSignal.SIGCONT);
        }
        var after = Lifecycle.MetricsTests.WaitForMetrics(pm, m => m["postmaster_connections"] == 3, "the three sessions counted");
        Assert.True(after["postmaster_connections_direct_total"] >= 3, "accepted by the backends themselves");
        Assert.Equal(4, after["postmaster_connections_accepted_total"]);
        foreach (var c in clients)
        {
            var row = pm.Status().Backends.Single(b => b.Pid == c.Session.Pid);
            Assert.Equal(c.Session.Id, row.Session!.Id); // shown in status like a handed-over session
        }
        clients.ForEach(c => c.Dispose());
        // Sessions over: new ones are served again, and with no ticket out (all backends busy) the acceptor hands over.
        var held = Enumerable.Range(0, 6).Select(_ => EchoClient.Tcp(port)).ToList();
        try
        {
            for (int i = 0; i < held.Count; i++)
                Assert.Equal($"held {i}", held[i].Ask($"held {i}"));
        }
        finally
        {
            held.ForEach(c => c.Dispose());
        }
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Every_connection_is_served_while_backends_come_and_go_at_their_session_limit()
    {
        // Backends accept for themselves and leave every third session: no connection may be handed to one that is
        // leaving, or left in a queue, while others come and go (two clients at once, 90 connections in all).
        int port = EchoClient.FreePort();
        using var pm = Server("conn-churn", port, "max_sessions_per_backend = 3", "spare_connection_backends = 2");
        pm.Start();
        var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            for (int i = 0; i < 45; i++)
            {
                try
                {
                    using var c = EchoClient.Tcp(port);
                    if (c.Ask($"{t}/{i}") != $"{t}/{i}")
                        errors.Enqueue($"{t}/{i}: wrong answer");
                }
                catch (Exception e)
                {
                    errors.Enqueue($"{t}/{i}: {e.GetType().Name}: {e.Message}");
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Empty(errors);
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Over_max_connections_a_connection_is_refused_and_the_next_one_after_a_session_ends_is_served()
    {
        int port = EchoClient.FreePort();
        using var pm = Server("conn-max", port, "max_connections = 2", "connection_rejection_message = 'sorry, too many clients already'");
        pm.Start();
        using var a = EchoClient.Tcp(port);
        using (var b = EchoClient.Tcp(port))
        {
            using var refused = EchoClient.ConnectOnly(port);
            Assert.Equal("sorry, too many clients already", refused.ReadLine());
            Assert.True(refused.IsClosedByServer());
            b.Send("quit");
            Assert.True(b.IsClosedByServer());
        }
        string? greeting = null;
        Wait.Until(() =>
        {
            using var c = EchoClient.Tcp(port); // the freed place may take a moment to be seen: retried
            greeting = c.Greeting;
            return greeting?.StartsWith("hello", StringComparison.Ordinal) == true;
        }, "a connection to be served again");
        Assert.Equal("still here", a.Ask("still here"));
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void A_silent_client_does_not_delay_the_others()
    {
        int port = EchoClient.FreePort();
        using var pm = Server("conn-silent", port);
        pm.Start();
        using var silent = EchoClient.ConnectOnly(port); // never reads, never writes
        for (int i = 0; i < 5; i++)
        {
            using var c = EchoClient.Tcp(port);
            Assert.Equal("fine", c.Ask("fine"));
        }
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Killing_a_connection_backend_without_a_lock_disconnects_only_its_client()
    {
        int port = EchoClient.FreePort();
        using var pm = Server("conn-kill", port, "spare_connection_backends = 2");
        pm.Start();
        var clients = Enumerable.Range(0, 20).Select(_ => EchoClient.Tcp(port)).ToList();
        try
        {
            var victim = clients[7];
            var before = pm.Status();
            pm.Kill(victim.Session.Pid);
            Assert.True(victim.IsClosedByServer());
            pm.WaitForReconcile(before);
            for (int i = 0; i < clients.Count; i++)
                if (i != 7)
                    Assert.Equal($"still {i}", clients[i].Ask($"still {i}"));
            Assert.Equal(before.FullRestarts, pm.Status().FullRestarts);
            using var again = EchoClient.Tcp(port);
            Assert.Equal("back", again.Ask("back"));
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Killing_a_connection_backend_holding_a_lock_restarts_everything_and_the_server_accepts_again()
    {
        int port = EchoClient.FreePort();
        using var pm = Server("conn-killlock", port);
        pm.Start();
        using var other = EchoClient.Tcp(port);
        using var holder = EchoClient.Tcp(port);
        Assert.Equal("locked", holder.Ask("lock conn-crash"));
        var before = pm.Status();
        pm.Kill(holder.Session.Pid);
        Assert.True(holder.IsClosedByServer());
        Assert.True(other.IsClosedByServer(), "a full restart ends every session");
        pm.WaitForFullRestart(before);
        string? greeting = null;
        Wait.Until(() =>
        {
            using var c = EchoClient.ConnectOnly(port);
            greeting = c.ReadLine();
            return greeting?.StartsWith("hello", StringComparison.Ordinal) == true;
        }, "the server to serve connections again");
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void A_second_instance_on_the_same_port_fails_with_the_hint()
    {
        int port = EchoClient.FreePort();
        using var first = Server("conn-first", port);
        first.Start();
        using var second = Server("conn-second", port);
        var r = second.TryStart();
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains($"Is another postmaster already running on port {port}?", r.ToString() + second.LogTail());
        first.Stop();
        first.AssertNothingLeaked();
        second.AssertNothingLeaked();
    }

    [Fact]
    public void Two_instances_never_share_a_unix_socket()
    {
        int port = EchoClient.FreePort();
        string dir = Path.Combine(Path.GetTempPath(), $"pm-sock-{Environment.ProcessId}-{port}");
        Directory.CreateDirectory(dir);
        try
        {
            using var first = Server("conn-sock1", port, $"unix_socket_directories = '{dir}'", "listen_addresses = ''");
            first.Start();
            using var second = Server("conn-sock2", port, $"unix_socket_directories = '{dir}'", "listen_addresses = ''");
            var r = second.TryStart();
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("already exists", r.ToString() + second.LogTail());
            using (var c = EchoClient.Unix(Path.Combine(dir, $".s.POSTMASTER.{port}")))
                Assert.Equal("mine", c.Ask("mine")); // the first instance's socket is untouched
            first.Stop();
            first.AssertNothingLeaked();
            Assert.Empty(Directory.GetFileSystemEntries(dir));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Immediate_shutdown_ends_open_sessions_and_leaves_nothing()
    {
        int port = EchoClient.FreePort();
        using var pm = Server("conn-immediate", port, "unix_socket_directories = '.'");
        pm.Start();
        using var a = EchoClient.Tcp(port);
        using var b = EchoClient.Unix(Path.Combine(pm.DataDirectory, $".s.POSTMASTER.{port}"));
        var r = pm.TryStop(Postmaster.Testing.ShutdownMode.Immediate);
        Assert.Equal(0, r.ExitCode);
        Assert.True(a.IsClosedByServer());
        Assert.True(b.IsClosedByServer());
        Assert.Throws<System.Net.Sockets.SocketException>(() => EchoClient.Tcp(port));
        Assert.False(File.Exists(Path.Combine(pm.DataDirectory, $".s.POSTMASTER.{port}")));
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Configured_workers_keep_their_slots_when_connections_want_more_backends()
    {
        int port = EchoClient.FreePort();
        using var pm = Clusters.Bare("conn-slots", $"connection_worker = '{EchoEntry}'", $"port = {port}", "backend_pool_size = 0",
            "max_backends = 3", "spare_connection_backends = 5", "worker.w.entry = 'idle'", "worker.w.count = 2");
        pm.Start();
        pm.WaitForWorker("w", WorkerState.Running);
        using (var c = EchoClient.Tcp(port))
        {
            string? answer = c.Ask("one");
            Assert.True(answer == "one", $"greeting {c.Greeting}, answer {answer}; log:\n{pm.ServerLog()}"); // the one slot left serves connections
        }
        Assert.Equal(2, pm.Status().Backends.Count(b => b.Name.StartsWith("w", StringComparison.Ordinal)));
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void A_connection_worker_that_does_not_load_refuses_clients_and_is_retried_with_backoff()
    {
        int port = EchoClient.FreePort();
        string missing = $"{Path.Combine(Paths.OutDir, "testchild", "TestChild.dll")}:Postmaster.TestChild.Workers.NoSuchWorker";
        using var pm = Clusters.Bare("conn-broken", $"connection_worker = '{missing}'", $"port = {port}", "backend_pool_size = 0",
            "max_backends = 10", "spare_connection_backends = 1");
        pm.Start();
        using (var c = EchoClient.ConnectOnly(port))
        {
            Assert.Equal("could not start a backend for the connection", c.ReadLine());
            Assert.True(c.IsClosedByServer());
        }
        // Each failed start doubles the wait before the next one: a broken worker is not a loop of process starts.
        foreach (int delay in new[] { 100, 200, 400, 800 })
            pm.WaitForLog($"exited before it was ready for connections; starting the next one in {delay} ms");
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Smart_shutdown_waits_for_open_sessions_fast_ends_them()
    {
        int port = EchoClient.FreePort();
        using var pm = Server("conn-smart", port);
        pm.Start();
        using var c = EchoClient.Tcp(port);
        var smart = pm.Run("stop", "-m", "smart", "-W");
        Assert.Equal(0, smart.ExitCode);
        pm.WaitForStatus(s => s.State == ServerState.Stopping, "the server to be stopping");
        Assert.Equal("during smart", c.Ask("during smart")); // the session goes on
        Assert.Throws<System.Net.Sockets.SocketException>(() => EchoClient.Tcp(port)); // the listening sockets are closed
        var fast = pm.TryStop(Postmaster.Testing.ShutdownMode.Fast);
        Assert.Equal(0, fast.ExitCode);
        Assert.True(c.IsClosedByServer());
        pm.AssertNothingLeaked();
    }
}

/// <summary>Socket activation: under <c>systemd-socket-activate</c> (which passes one listening socket as descriptor 3
/// with LISTEN_FDS=1 and LISTEN_PID set to the postmaster's pid), the postmaster serves on that socket instead of
/// binding its own, and its backends never see the variables.</summary>
public sealed class SocketActivationTests
{
    [Fact]
    public void A_socket_passed_by_systemd_is_used_instead_of_binding()
    {
        string Tool = new[] { "/usr/bin/systemd-socket-activate", "/bin/systemd-socket-activate" }.FirstOrDefault(File.Exists) ?? "/usr/bin/systemd-socket-activate";
        Assert.True(File.Exists(Tool), $"{Tool} is missing (Debian package systemd)");
        int port = EchoClient.FreePort();
        int configured = EchoClient.FreePort(); // what the configuration says: must stay unused
        string entry = $"{Path.Combine(Paths.OutDir, "testchild", "TestChild.dll")}:Postmaster.TestChild.Workers.EchoConnectionWorker";
        using var pm = Clusters.Bare("conn-activate", $"connection_worker = '{entry}'", $"port = {configured}", "backend_pool_size = 0");
        var psi = new System.Diagnostics.ProcessStartInfo(Tool)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { "-l", $"127.0.0.1:{port}", Path.Combine(Paths.OutDir, "postmaster"), "start", "-D", pm.DataDirectory })
            psi.ArgumentList.Add(a);
        var output = new System.Text.StringBuilder();
        using var activator = new System.Diagnostics.Process { StartInfo = psi };
        activator.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        activator.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        activator.Start();
        try
        {
            activator.BeginOutputReadLine();
            activator.BeginErrorReadLine();
            Wait.Until(() => { lock (output) return output.ToString().Contains("Listening on"); }, "systemd-socket-activate to listen");
            // systemd-socket-activate starts the postmaster on the first connection; that one waits in the backlog
            // until the server is ready, and is then served.
            using (var c = EchoClient.Tcp(port))
                Assert.Equal("activated", c.Ask("activated"));
            pm.WaitUntilReady();
            Assert.Throws<System.Net.Sockets.SocketException>(() => EchoClient.Tcp(configured));
            Wait.Until(() => { lock (output) return output.ToString().Contains("listening on socket passed by systemd"); },
                "the postmaster to say it uses the socket systemd passed");
            pm.Stop();
            Assert.True(activator.WaitForExit(60_000), "the foreground postmaster to exit after stop");
        }
        finally
        {
            if (!activator.HasExited)
                activator.Kill();
        }
        pm.AssertNothingLeaked();
    }
}
