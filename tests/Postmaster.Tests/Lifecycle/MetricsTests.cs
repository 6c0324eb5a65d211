using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Postmaster.Testing;
using Postmaster.Tests.Connections;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Lifecycle;

/// <summary>The instance's metrics in Prometheus text: <c>postmaster metrics</c> once, and the built-in <c>metrics</c>
/// worker over HTTP; counters that live in shared memory and move with crashes, restarts and connections.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class MetricsTests
{
    private static readonly string EchoEntry =
        $"{Path.Combine(Paths.OutDir, "testchild", "TestChild.dll")}:Postmaster.TestChild.Workers.EchoConnectionWorker";

    [Fact]
    public void Without_a_server_the_metrics_say_down_and_a_non_data_directory_is_an_error()
    {
        using var pm = Clusters.Bare("metrics-down");
        var r = pm.Run("metrics");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(0, Parse(r.Stdout)["postmaster_up"]);

        using var none = Clusters.Empty("metrics-none");
        Directory.CreateDirectory(none.DataDirectory);
        var bad = none.Run("metrics");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("is not a data directory", bad.Stderr);
    }

    [Fact]
    public void Counters_follow_reconciles_full_restarts_worker_restarts_and_connections()
    {
        int port = EchoClient.FreePort();
        using var pm = Clusters.Bare("metrics-counters", $"connection_worker = '{EchoEntry}'", $"port = {port}", "max_connections = 1",
            "backend_pool_size = 2", "max_backends = 40",
            "worker.w.entry = 'idle'", "worker.w.restart_delay = 10ms", "worker.h.entry = 'lock-hold'");
        pm.Start();
        pm.WaitForLog("is holding lock \"test lock\"");
        var m = WaitForMetrics(pm, x => x["postmaster_pool_idle_backends"] == 2 && x["postmaster_backends{kind=\"static\",state=\"running\"}"] == 2,
            "two static workers running and two idle pool members");
        Assert.Equal(1, m["postmaster_up"]);
        Assert.Equal(1, m["postmaster_state{state=\"ready\"}"]);
        Assert.Equal(2, m["postmaster_pool_size_backends"]);
        Assert.Equal(40, m["postmaster_backend_slots"]);
        Assert.True(m["postmaster_backend_start_seconds_count"] >= 4);
        Assert.Equal(m["postmaster_backend_start_seconds_count"], m["postmaster_backend_start_seconds_bucket{le=\"+Inf\"}"]);
        Assert.True(m["postmaster_main_segment_free_bytes"] > 0 && m["postmaster_main_segment_free_bytes"] < m["postmaster_main_segment_bytes"]);
        Assert.True(m["postmaster_dev_shm_free_bytes"] > 0);
        Assert.Equal(0, m["postmaster_reconciled_crashes_total"]);

        // A connection served, one refused.
        using (var a = EchoClient.Tcp(port))
        {
            using var refused = EchoClient.ConnectOnly(port);
            Assert.NotNull(refused.ReadLine());
            m = WaitForMetrics(pm, x => x["postmaster_connections"] == 1 && x["postmaster_connections_rejected_total"] == 1, "one session, one refusal");
            Assert.Equal(2, m["postmaster_connections_accepted_total"]);
        }

        // A crash without locks: reconciled, the worker restarted.
        pm.Kill(pm.WaitForWorker("w", WorkerState.Running).Single().Pid!.Value);
        pm.WaitForReconcile();
        m = WaitForMetrics(pm, x => x["postmaster_worker_restarts_total{worker=\"w\"}"] == 1 && x["postmaster_worker_state{worker=\"w\",state=\"running\"}"] == 1,
            "the worker restarted");
        Assert.Equal(1, m["postmaster_reconciled_crashes_total"]);
        Assert.True(m["postmaster_worker_last_exit_time_seconds{worker=\"w\"}"] > 1.7e9);

        // A lock holder's crash: a full restart; the postmaster's own counters survive the rebuilt segment.
        pm.Kill(pm.WaitForWorker("h", WorkerState.Running).Single().Pid!.Value);
        pm.WaitForFullRestart();
        m = WaitForMetrics(pm, x => x["postmaster_full_restarts_total"] == 1 && x["postmaster_state{state=\"ready\"}"] == 1, "the full restart");
        Assert.Equal(1, m["postmaster_reconciled_crashes_total"]);
        Assert.Equal(1, m["postmaster_connections_rejected_total"]);
        Assert.Equal(2, m["postmaster_connections_accepted_total"]);
        pm.Stop();
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void The_metrics_worker_serves_the_same_text_over_http_with_a_readiness_endpoint()
    {
        int port = EchoClient.FreePort();
        using var pm = Clusters.Bare("metrics-http", "worker.metrics.entry = 'metrics'", $"worker.metrics.argument = '127.0.0.1:{port}'",
            "worker.d.entry = 'dsm-hold'", "worker.d.argument = '2:1MB'");
        pm.Start();
        pm.WaitForLog("metrics: listening on http://127.0.0.1:");
        pm.WaitForLog("created dynamic shared memory segment");
        var (status, headers, body) = Get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(200, status);
        Assert.Contains("Content-Type: text/plain; version=0.0.4; charset=utf-8", headers);
        var m = Parse(body);
        Assert.Equal(1, m["postmaster_up"]);
        Assert.Equal(1, m["postmaster_worker_state{worker=\"metrics\",state=\"running\"}"]);
        Wait.Until(() => Parse(Get(port, "GET /metrics HTTP/1.0\r\n\r\n").Body)["postmaster_dsm_segments{implementation=\"posix\"}"] == 2, "two DSM segments");
        Assert.True(Parse(Get(port, "GET /metrics HTTP/1.0\r\n\r\n").Body)["postmaster_dsm_bytes{implementation=\"posix\"}"] >= 2 << 20);
        // The CLI renders the same families.
        var cli = Parse(pm.Run("metrics").Stdout);
        Assert.Equal(cli.Keys.Order(), m.Keys.Order());

        Assert.Equal((200, "ready\n"), (Get(port, "GET /ready HTTP/1.1\r\n\r\n").Status, Get(port, "GET /ready HTTP/1.1\r\n\r\n").Body));
        Assert.Equal(404, Get(port, "GET /nope HTTP/1.1\r\n\r\n").Status);
        Assert.Equal(405, Get(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").Status);
        Assert.Equal(400, Get(port, "garbage\r\n\r\n").Status);
        var head = Get(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
        Assert.Equal(200, head.Status);
        Assert.Equal("", head.Body);
        // A client that connects and says nothing does not stop the others from being served.
        using (var silent = new TcpClient("127.0.0.1", port))
            Assert.Equal(200, Get(port, "GET /ready HTTP/1.1\r\n\r\n").Status);
        // Nor do several (more than this 2-core machine's thread pool starts with), each tying up a request thread.
        var silents = Enumerable.Range(0, 8).Select(_ => new TcpClient("127.0.0.1", port)).ToList();
        try
        {
            Assert.Equal(200, Get(port, "GET /ready HTTP/1.1\r\n\r\n").Status);
        }
        finally
        {
            silents.ForEach(c => c.Dispose());
        }
        Assert.Equal(200, Get(port, "GET /ready HTTP/1.0\n\n").Status); // bare line feeds
        pm.Stop();
        Assert.Throws<SocketException>(() => new TcpClient("127.0.0.1", port).Dispose());
        pm.AssertNothingLeaked();
    }

    [Fact]
    public void The_exposition_is_well_formed()
    {
        using var pm = Clusters.Bare("metrics-format", "worker.w.entry = 'idle'");
        pm.Start();
        pm.WaitForWorker("w", WorkerState.Running);
        string text = pm.Run("metrics").Stdout;
        var types = new Dictionary<string, string>();
        var seen = new HashSet<string>();
        string? family = null;
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
                continue;
            var type = Regex.Match(line, @"^# TYPE ([a-z_]+) (gauge|counter|histogram)$");
            if (type.Success)
            {
                Assert.True(types.TryAdd(type.Groups[1].Value, type.Groups[2].Value), $"family {type.Groups[1].Value} twice");
                family = type.Groups[1].Value;
                continue;
            }
            var sample = Regex.Match(line, @"^([a-z_]+)(\{[a-z_]+=""[^""]*""(,[a-z_]+=""[^""]*"")*\})? (-?[0-9.e+E-]+|\+Inf)$");
            Assert.True(sample.Success, $"not a sample line: {line}");
            string name = sample.Groups[1].Value;
            Assert.NotNull(family);
            Assert.True(name == family || types[family!] == "histogram" && name.StartsWith(family!, StringComparison.Ordinal), $"{name} outside its family {family}");
            Assert.True(seen.Add(name + sample.Groups[2].Value), $"sample {line} twice");
            Assert.StartsWith("postmaster_", name);
            Assert.DoesNotContain("pid=", line);
        }
        foreach (var (name, type) in types)
            Assert.True(type != "counter" || name.EndsWith("_total", StringComparison.Ordinal), $"counter {name} without _total");
        pm.Stop();
    }

    internal static Dictionary<string, double> WaitForMetrics(PostmasterCluster pm, Func<Dictionary<string, double>, bool> condition, string what)
    {
        Dictionary<string, double>? last = null;
        pm.WaitUntil(() =>
        {
            last = Parse(pm.Run("metrics").Stdout);
            try
            {
                return condition(last);
            }
            catch (KeyNotFoundException)
            {
                return false;
            }
        }, what);
        return last!;
    }

    private static Dictionary<string, double> Parse(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#'))
            .Select(l => (Key: l[..l.LastIndexOf(' ')], Value: l[(l.LastIndexOf(' ') + 1)..]))
            .ToDictionary(p => p.Key, p => double.Parse(p.Value, CultureInfo.InvariantCulture));

    private static (int Status, string Headers, string Body) Get(int port, string request)
    {
        using var client = new TcpClient("127.0.0.1", port);
        using var stream = client.GetStream();
        stream.ReadTimeout = 20_000;
        stream.Write(Encoding.ASCII.GetBytes(request));
        using var ms = new MemoryStream();
        stream.CopyTo(ms);
        string response = Encoding.UTF8.GetString(ms.ToArray());
        int split = response.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(split > 0, $"no response head: {response}");
        string headers = response[..split];
        int status = int.Parse(headers.Split(' ')[1], CultureInfo.InvariantCulture);
        return (status, headers, response[(split + 4)..]);
    }
}
