using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Connections;

/// <summary>Connection backends that serve several sessions at once (<c>concurrent_sessions_per_backend</c>): sessions
/// share a backend up to the setting, with the asynchronous and the synchronous worker shape; <c>max_connections</c>
/// counts sessions; a kill ends only the killed backend's sessions; a session that throws or keeps a lock ends its
/// backend and the sessions on it; the session limit and shutdowns behave as with one session per backend.</summary>
public sealed class ConcurrentSessionsTests
{
    private static string Entry(bool async) =>
        $"{Path.Combine(Paths.OutDir, "testchild", "TestChild.dll")}:Postmaster.TestChild.Workers." +
        (async ? "AsyncEchoConnectionWorker" : "EchoConnectionWorker");

    private static PostmasterCluster Server(string name, int port, bool async, params string[] extra) =>
        Clusters.Bare(name, new[]
        {
            $"connection_worker = '{Entry(async)}'", $"port = {port}", "backend_pool_size = 1", "max_backends = 40",
            "concurrent_sessions_per_backend = 4", "spare_connection_backends = 1",
        }.Concat(extra).ToArray());

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Sessions_share_a_backend_up_to_concurrent_sessions_per_backend(bool async)
    {
        int port = EchoClient.FreePort();
        using var pm = Server(async ? "mux-share-async" : "mux-share-sync", port, async);
        pm.Start();
        var clients = new List<EchoClient>();
        try
        {
            for (int i = 0; i < 10; i++)
                clients.Add(EchoClient.Tcp(port));
            for (int i = 0; i < clients.Count; i++)
                Assert.Equal($"at once {i}", clients[i].Ask($"at once {i}"));
            var byPid = clients.GroupBy(c => c.Session.Pid).ToList();
            Assert.All(byPid, g => Assert.True(g.Count() <= 4, $"backend {g.Key} serves {g.Count()} sessions at once"));
            Assert.True(byPid.Count >= 3, "10 sessions need at least 3 backends of 4");
            Assert.True(byPid.Count < clients.Count, "backends serve several sessions");
            var status = pm.Status();
            foreach (var g in byPid)
            {
                var row = status.Backends.Single(b => b.Pid == g.Key);
                Assert.Equal(g.Count(), row.Session!.Open);
                Assert.Contains(row.Session.Id, g.Select(c => (long?)c.Session.Id));
            }
            Assert.Equal(clients.Select(c => c.Session.Id).Distinct().Count(), clients.Count);
            // The asynchronous sessions' code runs on .NET's socket event loop (inline completions), not the thread
            // pool: the receive was pending (the echo above was answered), so its continuation ran where it completed.
            if (async)
                Assert.Equal(".NET Sockets", clients[0].Ask("thread"));
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Max_connections_counts_sessions_not_backends()
    {
        int port = EchoClient.FreePort();
        using var pm = Server("mux-max", port, async: true, "max_connections = 5",
            "connection_rejection_message = 'sorry, too many clients already'");
        pm.Start();
        var clients = Enumerable.Range(0, 5).Select(_ => EchoClient.Tcp(port)).ToList();
        try
        {
            Assert.All(clients, c => Assert.StartsWith("hello session", c.Greeting));
            using (var refused = EchoClient.ConnectOnly(port))
            {
                Assert.Equal("sorry, too many clients already", refused.ReadLine());
                Assert.True(refused.IsClosedByServer());
            }
            clients[0].Send("quit");
            Assert.True(clients[0].IsClosedByServer());
            string? greeting = null;
            Wait.Until(() =>
            {
                using var c = EchoClient.Tcp(port); // the freed place may take a moment to be seen: retried
                greeting = c.Greeting;
                return greeting?.StartsWith("hello", StringComparison.Ordinal) == true;
            }, "a connection to be served again");
            for (int i = 1; i < clients.Count; i++)
                Assert.Equal("still here", clients[i].Ask("still here"));
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Killing_a_backend_ends_only_its_own_sessions()
    {
        int port = EchoClient.FreePort();
        using var pm = Server("mux-kill", port, async: true);
        pm.Start();
        var clients = Enumerable.Range(0, 12).Select(_ => EchoClient.Tcp(port)).ToList();
        try
        {
            int victim = clients[5].Session.Pid;
            var before = pm.Status();
            pm.Kill(victim);
            foreach (var c in clients.Where(c => c.Session.Pid == victim))
                Assert.True(c.IsClosedByServer());
            pm.WaitForReconcile(before);
            var others = clients.Where(c => c.Session.Pid != victim).ToList();
            Assert.True(others.Count >= 8, "the other backends' sessions");
            for (int i = 0; i < others.Count; i++)
                Assert.Equal($"still {i}", others[i].Ask($"still {i}"));
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

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_session_that_throws_or_keeps_a_lock_ends_its_backend_and_the_sessions_on_it(bool async)
    {
        int port = EchoClient.FreePort();
        using var pm = Server(async ? "mux-unclean-async" : "mux-unclean-sync", port, async, "max_connections = 4");
        pm.Start();
        // max_connections = 4 with 4 at once: the four sessions are on one backend.
        var clients = Enumerable.Range(0, 4).Select(_ => EchoClient.Tcp(port)).ToList();
        int thrower = clients[0].Session.Pid;
        try
        {
            Assert.All(clients, c => Assert.Equal(thrower, c.Session.Pid));
            clients[2].Send("throw");
            Assert.All(clients, c => Assert.True(c.IsClosedByServer()));
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
        Wait.Until(() => !pm.Status().Backends.Any(b => b.Pid == thrower), "the backend whose session threw to exit");
        Assert.Contains("the backend's other sessions end too", pm.ServerLog());
        int locker;
        using (var c = EchoClient.Tcp(port))
        {
            locker = c.Session.Pid;
            Assert.NotEqual(thrower, locker);
            Assert.Equal("locked", c.Ask("lock mux-test"));
            c.Send("quit");
            Assert.True(c.IsClosedByServer());
        }
        Wait.Until(() => !pm.Status().Backends.Any(b => b.Pid == locker), "the backend that kept a lock to exit");
        Assert.Contains("is not reused", pm.ServerLog());
        using (var c = EchoClient.Tcp(port))
        {
            Assert.Equal("locked", c.Ask("lock mux-test")); // released by the exit path of the backend that kept it
            Assert.Equal("unlocked", c.Ask("unlock mux-test"));
        }
        Assert.Equal(0, pm.Status().FullRestarts);
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void A_backend_at_its_session_limit_serves_the_sessions_it_has_and_exits()
    {
        int port = EchoClient.FreePort();
        using var pm = Server("mux-limit", port, async: true, "max_sessions_per_backend = 2");
        pm.Start();
        var clients = Enumerable.Range(0, 6).Select(_ => EchoClient.Tcp(port)).ToList();
        try
        {
            var byPid = clients.GroupBy(c => c.Session.Pid).ToList();
            Assert.All(byPid, g => Assert.True(g.Count() <= 2, $"backend {g.Key} got {g.Count()} sessions"));
            for (int i = 0; i < clients.Count; i++)
                Assert.Equal($"served {i}", clients[i].Ask($"served {i}"));
            int first = clients[0].Session.Pid;
            foreach (var c in clients.Where(c => c.Session.Pid == first))
            {
                Assert.Contains(first, pm.Status().Backends.Select(b => b.Pid)); // it waits for its sessions
                c.Send("quit");
                Assert.True(c.IsClosedByServer());
            }
            Wait.Until(() => !pm.Status().Backends.Any(b => b.Pid == first), "the backend at its limit to exit");
            foreach (var c in clients.Where(c => c.Session.Pid != first))
                Assert.Equal("on", c.Ask("on"));
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void Smart_shutdown_waits_for_the_sessions_of_a_backend_fast_ends_them()
    {
        int port = EchoClient.FreePort();
        using var pm = Server("mux-smart", port, async: true);
        pm.Start();
        using var a = EchoClient.Tcp(port);
        using var b = EchoClient.Tcp(port);
        Assert.Equal(a.Session.Pid, b.Session.Pid);
        var smart = pm.Run("stop", "-m", "smart", "-W");
        Assert.Equal(0, smart.ExitCode);
        pm.WaitForStatus(s => s.State == ServerState.Stopping, "the server to be stopping");
        Assert.Equal("during smart", a.Ask("during smart")); // the sessions go on
        b.Send("quit");
        Assert.True(b.IsClosedByServer());
        Assert.Equal("still", a.Ask("still")); // one ended: the backend keeps the other
        Assert.Throws<System.Net.Sockets.SocketException>(() => EchoClient.Tcp(port)); // the listening sockets are closed
        var fast = pm.TryStop(ShutdownMode.Fast);
        Assert.Equal(0, fast.ExitCode);
        Assert.True(a.IsClosedByServer());
        pm.AssertNothingLeaked();
    }
}
