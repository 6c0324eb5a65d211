using System.Net;
using System.Net.Sockets;
using System.Text;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.LockFile;
using Postmaster.Workers;

namespace Postmaster.Backend.Workers;

/// <summary>
/// "metrics": serves the instance's metrics over HTTP as a supervised backend, so the postmaster itself stays lean.
/// Argument: the address to listen on, <c>HOST:PORT</c> (<c>127.0.0.1:9187</c>, <c>[::1]:9187</c>, <c>0.0.0.0:9187</c>).
/// <list type="bullet">
/// <item><c>GET /metrics</c>: the same Prometheus text as <c>postmaster metrics</c> (<see cref="InstanceMetrics"/>);</item>
/// <item><c>GET /ready</c>: 200 while the lock file says <c>ready</c>, else 503, with the state as the body;</item>
/// <item>anything else: 404 (405 for a method other than GET and HEAD). One request per connection, a request head of
/// at most 8 kB read within 5 s; a client that sends nothing or too much is closed. Requests are served concurrently
/// (up to 16 at once; more are closed), so a silent client never holds up a scrape.</item>
/// </list>
/// </summary>
internal sealed class MetricsWorker : IBackgroundWorker
{
    private const int MaxRequestBytes = 8192;
    private const int MaxClients = 16;
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(2);

    public int Run(WorkerContext context)
    {
        if (context is not HostWorkerContext host || host.DsmConfig is not { } dsmConfig)
            throw new InvalidOperationException("worker \"metrics\" runs only as a built-in worker of the backend host");
        if (!IPEndPoint.TryParse(context.Argument, out var endpoint) || endpoint.Port == 0)
            throw new ArgumentException($"invalid argument \"{context.Argument}\" for worker \"metrics\": expected HOST:PORT, e.g. 127.0.0.1:9187");
        using var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(endpoint);
            listener.Listen(64);
        }
        catch (SocketException e)
        {
            throw new InvalidOperationException($"could not listen on {endpoint} for metrics: {e.Message}", e);
        }
        context.Log($"metrics: listening on http://{endpoint}/metrics");
        using var dsm = AttachDsm(host, dsmConfig);
        using var stop = context.Stopping.Register(listener.Dispose);
        using var slots = new SemaphoreSlim(MaxClients);
        while (!context.Stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                break; // stopping
            }
            if (!slots.Wait(0))
            {
                client.Dispose(); // MaxClients requests in progress already: a scraper retries
                continue;
            }
            // Each request on a thread of its own (not the thread pool, which a few silent clients would exhaust on 2
            // cores): a slow or silent client never delays the next scrape.
            new Thread(() =>
            {
                using (client)
                {
                    try
                    {
                        Serve(client, host, dsm);
                    }
                    catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
                    {
                        // the client went away: nothing to answer
                    }
                    catch (Exception e)
                    {
                        // Reading the instance failed (shared memory that fails validation, ...): the scraper gets a
                        // 500 that says why, and the worker goes on serving.
                        try
                        {
                            Respond(client, 500, "Internal Server Error", "text/plain; charset=utf-8",
                                $"could not read the instance: {e.Message}\n", head: false);
                        }
                        catch (Exception inner) when (inner is SocketException or IOException or ObjectDisposedException)
                        {
                            // gone meanwhile
                        }
                    }
                    finally
                    {
                        slots.Release();
                    }
                }
            }) { IsBackground = true, Name = "metrics request" }.Start();
        }
        return 1; // stopped, as the other built-in workers that run until asked to stop
    }

    private static DsmControl? AttachDsm(HostWorkerContext host, DsmConfig config)
    {
        try
        {
            return DsmControl.Attach(host.Shmem, config);
        }
        catch (ShmemException)
        {
            return null;
        }
    }

    private static void Serve(Socket client, HostWorkerContext host, DsmControl? dsm)
    {
        client.ReceiveTimeout = (int)RequestTimeout.TotalMilliseconds;
        client.SendTimeout = (int)RequestTimeout.TotalMilliseconds;
        var head = ReadHead(client);
        if (head is null)
            return;
        string[] requestLine = head.Split("\r\n", 2)[0].Split(' ');
        if (requestLine.Length != 3 || !requestLine[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
        {
            Respond(client, 400, "Bad Request", "text/plain; charset=utf-8", "bad request\n", head: false);
            return;
        }
        string method = requestLine[0], path = requestLine[1].Split('?', 2)[0];
        bool isHead = method == "HEAD";
        if (method != "GET" && !isHead)
        {
            Respond(client, 405, "Method Not Allowed", "text/plain; charset=utf-8", "only GET and HEAD\n", isHead, "Allow: GET, HEAD\r\n");
            return;
        }
        var contents = DataDirLockFile.Probe(host.DataDir).Contents;
        switch (path)
        {
            case "/metrics":
                string text = contents is null
                    ? InstanceMetrics.Down()
                    : InstanceMetrics.Render(contents, host.Shmem, dsm, Free("/dev/shm"));
                Respond(client, 200, "OK", InstanceMetrics.ContentType, text, isHead);
                break;
            case "/ready":
                string state = contents?.TrimmedStatus ?? "unknown";
                bool ready = state == PmStatus.Ready.Trim();
                Respond(client, ready ? 200 : 503, ready ? "OK" : "Service Unavailable", "text/plain; charset=utf-8", state + "\n", isHead);
                break;
            default:
                Respond(client, 404, "Not Found", "text/plain; charset=utf-8", "not found: /metrics and /ready are served\n", isHead);
                break;
        }
    }

    /// <summary>The request head (up to the blank line), or null when the client sent too much, too slowly or nothing.</summary>
    private static string? ReadHead(Socket client)
    {
        var buffer = new byte[MaxRequestBytes];
        int used = 0;
        var deadline = Environment.TickCount64 + (long)RequestTimeout.TotalMilliseconds;
        while (used < buffer.Length)
        {
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
                return null;
            client.ReceiveTimeout = (int)Math.Max(1, left); // one deadline for the whole head, however it trickles in
            int n = client.Receive(buffer, used, buffer.Length - used, SocketFlags.None);
            if (n == 0)
                return null;
            used += n;
            string text = Encoding.ASCII.GetString(buffer, 0, used);
            int end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end < 0)
                end = text.IndexOf("\n\n", StringComparison.Ordinal); // bare line feeds, as lenient servers accept
            if (end >= 0)
                return text[..end];
        }
        return null;
    }

    private static void Respond(Socket client, int status, string reason, string contentType, string body, bool head, string extraHeaders = "")
    {
        byte[] bytes = Encoding.UTF8.GetBytes(body);
        string headers = $"HTTP/1.1 {status} {reason}\r\nContent-Type: {contentType}\r\nContent-Length: {bytes.Length}\r\n{extraHeaders}Connection: close\r\n\r\n";
        client.Send(Encoding.ASCII.GetBytes(headers));
        if (!head)
            client.Send(bytes);
        client.Shutdown(SocketShutdown.Send);
    }

    private static long? Free(string path)
    {
        try
        {
            return new DriveInfo(path).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }
}
