using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Postmaster.Bench.Suites.Backends;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Os;

namespace Postmaster.Bench.Suites;

/// <summary>
/// Suite "metrics": the cost of a scrape of an instance with 200 backends (200 idle pool members plus the metrics
/// worker). (1) An HTTP GET of /metrics from the built-in metrics worker against a GET of /ready from the same worker
/// (the same HTTP path, no rendering); (2) the rendering alone in this process (attached read-only) against reading
/// the slots without rendering; (3) <c>postmaster metrics</c> as a command against a bare .NET process start.
/// </summary>
public sealed class MetricsSuite : IBenchSuite
{
    private const int Backends = 200;
    private const int Scrapes = 300;

    public string Name => "metrics";

    public string Description => "metrics scrape with 200 backends: HTTP worker, rendering, the CLI";

    public void Run()
    {
        var table = new BenchTable();
        int port = ConnectionsSuite.FreePort();
        using var server = BenchServer.Start("metrics", new Dictionary<string, string>
        {
            ["max_backends"] = (Backends + 10).ToString(CultureInfo.InvariantCulture),
            ["backend_pool_size"] = Backends.ToString(CultureInfo.InvariantCulture),
            ["worker.metrics.entry"] = "'metrics'",
            ["worker.metrics.argument"] = $"'127.0.0.1:{port}'",
        });
        ConnectionsSuite.WaitForPort(port);
        var sw = Stopwatch.StartNew();
        while (Idle(Get(port, "/metrics")) < Backends)
        {
            if (sw.Elapsed > BenchServer.WaitLimit)
                throw new TimeoutException($"the pool did not reach {Backends} idle members");
            Thread.Sleep(50);
        }
        Console.WriteLine($"(pool of {Backends} idle members up after {sw.Elapsed.TotalSeconds:0.0} s)");

        for (int i = 0; i < 50; i++) // first-use costs of both paths
        {
            Get(port, "/metrics");
            Get(port, "/ready");
        }
        var http = new double[Scrapes];
        var ready = new double[Scrapes];
        for (int i = 0; i < Scrapes; i++)
        {
            http[i] = Timed(() => Get(port, "/metrics"));
            ready[i] = Timed(() => Get(port, "/ready"));
        }
        table.AddTime($"HTTP GET /metrics, {Backends} backends, median", "GET /ready, same worker", Median(ready), Median(http), "ms", "< 10 ms");
        table.AddTime($"HTTP GET /metrics, {Backends} backends, p99", "GET /ready, same worker", P99(ready), P99(http), "ms", "report");

        var shmem = server.Shmem;
        var contents = server.ReadLockFile()!;
        using var dsm = DsmControl.Attach(shmem, DsmConfig.For(DsmType.Posix, server.Dir, FileStat.TryStat(server.Dir)!.Value));
        var render = new double[Scrapes];
        var slots = new double[Scrapes];
        for (int i = 0; i < Scrapes; i++)
        {
            render[i] = Timed(() => InstanceMetrics.Render(contents, shmem, dsm, 0));
            slots[i] = Timed(() =>
            {
                for (int s = 0; s < shmem.Slots.Count; s++)
                    _ = shmem.Slots.Read(s);
            });
        }
        table.AddTime($"rendering alone, {Backends} backends, median", "reading every slot", Median(slots), Median(render), "ms", "report");

        var cli = new double[20];
        var hello = new double[20];
        for (int i = 0; i < cli.Length; i++)
        {
            cli[i] = Timed(() => BenchProcess.Run(BenchPaths.Postmaster, null, "metrics", "-D", server.Dir));
            hello[i] = Timed(() => BenchProcess.Run(BenchPaths.Hello, null));
        }
        table.AddTime($"postmaster metrics (a process), {Backends} backends", "bare .NET hello process", Median(hello), Median(cli), "ms", "report");
        Console.Write(table.ToMarkdown());
    }

    private static double Timed(Action action)
    {
        long t = Stopwatch.GetTimestamp();
        action();
        return Stopwatch.GetElapsedTime(t).TotalMilliseconds;
    }

    private static double Median(double[] xs) => Stats.Median(xs);

    private static double P99(double[] xs)
    {
        var sorted = xs.Order().ToArray();
        return sorted[(int)(sorted.Length * 0.99)];
    }

    private static int Idle(string metrics)
    {
        foreach (string line in metrics.Split('\n'))
            if (line.StartsWith("postmaster_pool_idle_backends ", StringComparison.Ordinal))
                return int.Parse(line["postmaster_pool_idle_backends ".Length..], CultureInfo.InvariantCulture);
        return 0;
    }

    private static string Get(int port, string path)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        s.Connect(new IPEndPoint(IPAddress.Loopback, port));
        s.Send(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n"));
        var buf = new byte[1 << 16];
        var sb = new StringBuilder();
        int n;
        while ((n = s.Receive(buf)) > 0)
            sb.Append(Encoding.UTF8.GetString(buf, 0, n));
        return sb.ToString();
    }
}
