using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Postmaster.Bench.Suites.Backends;

namespace Postmaster.Bench.Suites;

/// <summary>Memory: PSS per idle connection backend with 100 and 500 sessions open (the KeyValue sample; each session
/// has answered one PING and then idles), against as many bare .NET processes side by side that each hold one
/// connection the same way (bench/Hello <c>client</c>: a blocking System.Net.Sockets loop answering PING), and, for
/// scale, against bare processes that only sleep; measured one after the other on the same machine.</summary>
public sealed partial class ConnectionsSuite
{
    private static readonly TimeSpan MemorySettle = TimeSpan.FromSeconds(3);

    private static void MeasureMemory(BenchTable table)
    {
        foreach (int sessions in new[] { 100, 500 })
        {
            Console.WriteLine($"idle connection backends: {sessions}");
            var backend = IdleConnectionBackends(sessions);
            var client = BareProcesses(sessions, connected: true);
            var sleeping = BareProcesses(sessions, connected: false);
            string peer = $"bare .NET process holding one connection ({sessions} side by side)";
            table.AddTime($"PSS per idle connection backend (KeyValue), {sessions} sessions open", peer,
                client.Pss / 1024.0, backend.Pss / 1024.0, "MiB", "≤ 1.25×");
            table.AddTime($"USS per idle connection backend (KeyValue), {sessions} sessions open", peer,
                client.Uss / 1024.0, backend.Uss / 1024.0, "MiB", "report");
            table.AddTime($"PSS per idle connection backend (KeyValue), {sessions} sessions open",
                $"bare .NET process that only sleeps ({sessions} side by side)", sleeping.Pss / 1024.0, backend.Pss / 1024.0,
                "MiB", "report");
        }
    }

    /// <summary>Median PSS and USS (kB) of the connection backends serving <paramref name="sessions"/> idle clients.</summary>
    private static (double Pss, double Uss) IdleConnectionBackends(int sessions)
    {
        int port = FreePort();
        var settings = Settings(KeyValueEntry, port);
        settings["max_backends"] = (sessions + 20).ToString(CultureInfo.InvariantCulture);
        settings["max_connections"] = (sessions + 10).ToString(CultureInfo.InvariantCulture);
        settings["connection_worker_argument"] = "'1MB'";
        using var server = BenchServer.Start($"conn-mem-{sessions}", settings);
        WaitForPort(port);
        var clients = new List<Socket>();
        try
        {
            var buf = new byte[64];
            for (int i = 0; i < sessions; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 60_000 };
                clients.Add(s);
                s.Connect(new IPEndPoint(IPAddress.Loopback, port));
                s.Send("PING\r\n"u8);
                if (s.Receive(buf) < 7)
                    throw new InvalidOperationException("the key-value server did not answer PING");
            }
            var pids = server.WaitForBackends(bs => bs.Count(b => b.Session.Client.Length > 0) >= sessions,
                    $"{sessions} connection backends in session")
                .Where(b => b.Session.Client.Length > 0).Select(b => b.Pid).ToList();
            Thread.Sleep(MemorySettle);
            var use = pids.Select(ProcStats.Memory).ToList();
            return (Median(use.Select(u => (double)u.Pss)), Median(use.Select(u => (double)u.Private)));
        }
        finally
        {
            foreach (var s in clients)
                s.Dispose();
        }
    }

    /// <summary>Median PSS and USS (kB) of <paramref name="count"/> bare .NET processes: each connected to a listener
    /// of this process and having answered one PING, or only sleeping.</summary>
    private static (double Pss, double Uss) BareProcesses(int count, bool connected)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(count);
        string port = ((IPEndPoint)listener.LocalEndPoint!).Port.ToString(CultureInfo.InvariantCulture);
        var bare = Enumerable.Range(0, count)
            .Select(_ => connected ? BenchProcess.Start(BenchPaths.Hello, "client", port) : BenchProcess.Start(BenchPaths.Hello, "wait"))
            .ToList();
        var accepted = new List<Socket>();
        try
        {
            var buf = new byte[64];
            for (int i = 0; connected && i < count; i++)
            {
                var s = listener.Accept();
                accepted.Add(s);
                s.ReceiveTimeout = 60_000;
                s.Send("PING\r\n"u8);
                if (s.Receive(buf) < 7)
                    throw new InvalidOperationException("a bare client did not answer PING");
            }
            Thread.Sleep(MemorySettle);
            var use = bare.Select(ProcStats.Memory).ToList();
            return (Median(use.Select(u => (double)u.Pss)), Median(use.Select(u => (double)u.Private)));
        }
        finally
        {
            BenchProcess.KillAll(bare);
            accepted.ForEach(s => s.Dispose());
        }
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }
}
