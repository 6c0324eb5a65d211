using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Postmaster.Bench.Suites.Backends;
using Postmaster.Shmem.Os;

namespace Postmaster.Bench.Suites;

/// <summary>Crash isolation: 50 persistent clients do request/response round trips while one connection backend is
/// SIGKILLed every 500 ms for 20 s. Counted: round trips, failures on connections whose backend was not killed (target
/// 0), and how long a killed client takes to be served again.</summary>
public sealed partial class ConnectionsSuite
{
    private const int CrashClients = 50;
    private static readonly TimeSpan CrashDuration = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan KillEvery = TimeSpan.FromMilliseconds(500);

    private static void MeasureCrashIsolation()
    {
        int port = FreePort();
        var settings = Settings(EchoEntry, port);
        settings["spare_connection_backends"] = "8";
        using var server = BenchServer.Start("conn-crash", settings);
        WaitForPort(port);
        var killed = new HashSet<int>();
        var current = new int[CrashClients];
        long trips = 0, unexpected = 0, expected = 0;
        var reconnects = new List<double>();
        var stop = new CancellationTokenSource();
        var threads = Enumerable.Range(0, CrashClients).Select(i => new Thread(() =>
        {
            var buf = new byte[256];
            while (!stop.IsCancellationRequested)
            {
                long t0 = Stopwatch.GetTimestamp();
                Socket s;
                int pid;
                try
                {
                    s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 30_000 };
                    s.Connect(new IPEndPoint(IPAddress.Loopback, port));
                    string greeting = ReadLine(s, buf) ?? throw new IOException("closed before the greeting");
                    pid = int.Parse(greeting.Split(' ')[4], CultureInfo.InvariantCulture);
                }
                catch (Exception e) when (e is SocketException or IOException or FormatException or IndexOutOfRangeException)
                {
                    Thread.Sleep(5);
                    continue;
                }
                lock (killed)
                {
                    if (current[i] != 0) // this client lost its backend before: the time until it is served again
                        reconnects.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    current[i] = pid;
                }
                using (s)
                {
                    try
                    {
                        while (!stop.IsCancellationRequested)
                        {
                            s.Send("p\n"u8);
                            if (ReadLine(s, buf) != "p")
                                throw new IOException("closed");
                            Interlocked.Increment(ref trips);
                        }
                    }
                    catch (Exception e) when (e is SocketException or IOException)
                    {
                        lock (killed)
                        {
                            if (killed.Contains(pid))
                                expected++;
                            else if (!stop.IsCancellationRequested)
                                unexpected++;
                        }
                    }
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        var random = new Random(13);
        var until = Stopwatch.GetTimestamp() + (long)(CrashDuration.TotalSeconds * Stopwatch.Frequency);
        int kills = 0;
        while (Stopwatch.GetTimestamp() < until)
        {
            Thread.Sleep(KillEvery);
            int victim;
            lock (killed)
            {
                victim = current[random.Next(CrashClients)];
                if (victim == 0 || killed.Contains(victim) || ParentOf(victim) != server.Pid)
                    continue; // never signal a process not proven to be this server's backend
                killed.Add(victim);
            }
            ProcessControl.Signal(victim, Signals.SIGKILL);
            kills++;
        }
        stop.Cancel();
        threads.ForEach(t => t.Join());
        reconnects.Sort();
        Console.WriteLine();
        Console.WriteLine($"Crash isolation ({CrashClients} persistent clients, a connection backend SIGKILLed every " +
                          $"{KillEvery.TotalMilliseconds:0} ms for {CrashDuration.TotalSeconds:0} s): {kills} kills, {trips} round trips, " +
                          $"{unexpected} failures on connections whose backend was not killed (target 0), {expected} sessions lost " +
                          $"with their killed backend; reconnect until served again: median " +
                          $"{(reconnects.Count > 0 ? reconnects[reconnects.Count / 2] : double.NaN):0.0} ms, p99 " +
                          $"{(reconnects.Count > 0 ? reconnects[(int)(reconnects.Count * 0.99)] : double.NaN):0.0} ms.");
    }

    private static string? ReadLine(Socket s, byte[] buf)
    {
        int n = 0;
        while (n == 0 || buf[n - 1] != (byte)'\n')
        {
            int r = s.Receive(buf, n, buf.Length - n, SocketFlags.None);
            if (r == 0)
                return null;
            n += r;
        }
        return Encoding.UTF8.GetString(buf, 0, n - 1);
    }

    /// <summary>The parent pid from /proc/PID/stat (0 when the process is gone).</summary>
    private static int ParentOf(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return int.Parse(fields[1], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
        {
            return 0;
        }
    }
}
