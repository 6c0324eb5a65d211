using System.Net;
using System.Net.Sockets;
using Postmaster.Configuration;
using Postmaster.Daemon;
using Postmaster.Logging;
using Postmaster.Shmem.Os;

namespace Postmaster.Connections;

/// <summary>One listening socket, how the log names it, and whether systemd passed it (then it is systemd's too, and
/// is only closed, never shut down).</summary>
internal sealed record Listener(Socket Socket, string Description, bool Passed = false);

/// <summary>
/// The listening sockets (PostgreSQL's StreamServerPort): TCP on each of <c>listen_addresses</c> at <c>port</c>, and a
/// Unix-domain socket <c>.s.POSTMASTER.PORT</c> in each of <c>unix_socket_directories</c> with its lock file beside
/// it; or, under systemd socket activation (<c>LISTEN_FDS</c>/<c>LISTEN_PID</c>), the sockets systemd passed. Created
/// before "ready"; all are non-blocking and close-on-exec; <see cref="Dispose"/> closes them and removes the socket
/// files and lock files this instance created.
/// </summary>
internal sealed class Listeners : IDisposable
{
    private readonly List<Listener> _all = new();
    private readonly List<(string Socket, string Lock)> _files = new();

    private Listeners()
    {
    }

    public IReadOnlyList<Listener> All => _all;

    /// <summary>Line 5 of postmaster.pid: the first Unix socket directory (empty when none).</summary>
    public string FirstSocketDirectory { get; private set; } = "";

    /// <summary>Line 6 of postmaster.pid: the first TCP address listened on (empty when none).</summary>
    public string FirstListenAddress { get; private set; } = "";

    /// <summary>Opens every listening socket the settings ask for; throws <see cref="StartupException"/> (FATAL) when
    /// none can be opened, or when a Unix socket belongs to another running instance.</summary>
    public static Listeners Open(Settings settings, string dataDir, ServerLog log)
    {
        var l = new Listeners();
        try
        {
            if (SystemdSockets() is { Count: > 0 } passed)
            {
                foreach (var s in passed)
                {
                    l.Add(s, $"socket passed by systemd ({s.LocalEndPoint})", passed: true);
                    log.Log($"listening on socket passed by systemd ({s.LocalEndPoint})");
                }
                return l;
            }
            l.OpenTcp(settings, log);
            foreach (string dir in settings.UnixSocketDirectories)
                l.OpenUnix(Path.GetFullPath(dir, dataDir), settings, log);
            if (l._all.Count == 0)
                throw new StartupException("no socket created for listening",
                    "connection_worker is set, but listen_addresses and unix_socket_directories name nothing that could be opened.");
            return l;
        }
        catch
        {
            l.Dispose();
            throw;
        }
    }

    private void Add(Socket s, string description, bool passed = false)
    {
        s.Blocking = false;
        _all.Add(new Listener(s, description, passed));
    }

    /// <summary>Stops listening at once, for every process that holds a copy of the sockets (idle connection backends
    /// accept on them too): shutdown(2) on a listening socket ends the listening state of the socket itself, where
    /// close(2) only drops this process's descriptor. New connections are refused from then on (TCP: RST; Unix:
    /// ECONNREFUSED). Sockets systemd passed are left listening: they are systemd's, and queue connections for the
    /// next start (socket activation).</summary>
    public void StopListening()
    {
        foreach (var l in _all.Where(l => !l.Passed))
        {
            try
            {
                l.Socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // not listening any more, or closed already
            }
        }
    }

    private void OpenTcp(Settings settings, ServerLog log)
    {
        if (settings.ListenAddresses.Count == 0)
            return;
        int port = settings.Port;
        int opened = 0;
        foreach (string item in settings.ListenAddresses)
        {
            foreach (var address in Resolve(item, log))
            {
                string family = address.AddressFamily == AddressFamily.InterNetworkV6 ? "IPv6" : "IPv4";
                Socket? s = null;
                try
                {
                    s = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp); // EAFNOSUPPORT without IPv6
                    if (address.AddressFamily == AddressFamily.InterNetworkV6)
                        s.DualMode = false; // IPV6_V6ONLY: "*" binds 0.0.0.0 and :: separately, as PostgreSQL does
                    // No ReuseAddress: on Linux .NET maps it to SO_REUSEPORT as well, which would let a second
                    // instance listen on the same port. (.NET already sets SO_REUSEADDR for a quick restart.)
                    s.Bind(new IPEndPoint(address, port));
                    s.Listen(settings.ListenBacklog);
                }
                catch (SocketException e)
                {
                    s?.Dispose();
                    log.Log($"could not bind {family} address \"{address}\": {e.Message}",
                        hint: e.SocketErrorCode == SocketError.AddressAlreadyInUse
                            ? $"Is another postmaster already running on port {port}? If not, wait a few seconds and retry."
                            : null);
                    continue;
                }
                Add(s!, $"{family} address \"{address}\", port {port}");
                log.Log($"listening on {family} address \"{address}\", port {port}");
                if (opened++ == 0)
                    FirstListenAddress = item;
            }
        }
        if (opened == 0)
            throw new StartupException("could not create any TCP/IP sockets",
                hint: $"Is another postmaster already running on port {port}? If not, wait a few seconds and retry.");
    }

    private static IEnumerable<IPAddress> Resolve(string item, ServerLog log)
    {
        if (item == "*")
            return [IPAddress.Any, IPAddress.IPv6Any];
        if (IPAddress.TryParse(item, out var ip))
            return [ip];
        if (item.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            return [IPAddress.Loopback, IPAddress.IPv6Loopback];
        try
        {
            return Dns.GetHostAddresses(item).Distinct();
        }
        catch (SocketException e)
        {
            log.Warning($"could not translate host name \"{item}\", service \"\" to address: {e.Message}");
            return [];
        }
    }

    private void OpenUnix(string dir, Settings settings, ServerLog log)
    {
        string path = Path.Combine(dir, ConnectionSettings.SocketFileName(settings.Port));
        if (System.Text.Encoding.UTF8.GetByteCount(path) > ConnectionSettings.MaxSocketPathBytes)
            throw new StartupException($"Unix-domain socket path \"{path}\" is too long (maximum {ConnectionSettings.MaxSocketPathBytes} bytes)");
        string lockPath = path + ".lock";
        SocketLockFile.Take(lockPath, path, dir);
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            if (File.Exists(path) || Directory.Exists(path))
                File.Delete(path); // stale: its lock file named a process that is gone (checked above)
            s.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, (UnixFileMode)settings.UnixSocketPermissions);
            s.Listen(settings.ListenBacklog);
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
        {
            s.Dispose();
            SocketLockFile.Remove(lockPath);
            throw new StartupException($"could not create Unix-domain socket in directory \"{dir}\": {e.Message}");
        }
        _files.Add((path, lockPath));
        Add(s, $"Unix socket \"{path}\"");
        log.Log($"listening on Unix socket \"{path}\"");
        if (FirstSocketDirectory.Length == 0)
            FirstSocketDirectory = dir;
    }

    /// <summary>Sockets passed by systemd: LISTEN_PID must be this process; descriptors 3 .. 3 + LISTEN_FDS - 1.
    /// The variables are removed so that backends never see them.</summary>
    private static List<Socket>? SystemdSockets()
    {
        string? pidText = Environment.GetEnvironmentVariable("LISTEN_PID");
        string? fdsText = Environment.GetEnvironmentVariable("LISTEN_FDS");
        Environment.SetEnvironmentVariable("LISTEN_PID", null);
        Environment.SetEnvironmentVariable("LISTEN_FDS", null);
        Environment.SetEnvironmentVariable("LISTEN_FDNAMES", null);
        if (pidText is null || fdsText is null || !int.TryParse(pidText, out int pid) || pid != ProcessControl.CurrentPid ||
            !int.TryParse(fdsText, out int count) || count <= 0 || count > 64)
            return null;
        var sockets = new List<Socket>();
        try
        {
            for (int fd = 3; fd < 3 + count; fd++)
            {
                ProcessControl.SetCloseOnExec(fd);
                var s = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
                sockets.Add(s);
                _ = s.LocalEndPoint; // not a bound socket: throws here, not later
            }
        }
        catch (Exception e) when (e is SocketException or ArgumentException or NotSupportedException)
        {
            sockets.ForEach(s => s.Dispose());
            throw new StartupException($"a descriptor passed by systemd (LISTEN_FDS = {count}) is not a listening socket: {e.Message}");
        }
        return sockets;
    }

    public void Dispose()
    {
        StopListening();
        foreach (var l in _all)
            l.Socket.Dispose();
        _all.Clear();
        foreach (var (socket, lockPath) in _files)
        {
            try
            {
                File.Delete(socket);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
            SocketLockFile.Remove(lockPath);
        }
        _files.Clear();
    }
}
