using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Postmaster.Daemon;

/// <summary>
/// sd_notify(3) for <c>Type=notify</c> units, without libsystemd: datagrams to <c>NOTIFY_SOCKET</c> (a path, or an
/// abstract name written with a leading <c>@</c>). The supervisor sends <c>READY=1</c> with <c>MAINPID</c> when it is
/// first ready, <c>STATUS=</c> on every state change (in words), <c>RELOADING=1</c> with <c>MONOTONIC_USEC</c> and then
/// <c>READY=1</c> around a reload, <c>STOPPING=1</c> when a shutdown begins, and <c>WATCHDOG=1</c> from its own loop at
/// half of <c>WATCHDOG_USEC</c> (so a supervisor loop that hangs is what the watchdog catches). The variables are taken
/// out of the environment when the daemon starts, so no backend inherits them (a worker must never notify for the
/// postmaster). Without <c>NOTIFY_SOCKET</c> every call is a no-op. Best effort by design: a failed notification is
/// never a reason to stop the server.
/// </summary>
internal sealed class SystemdNotify : IDisposable
{
    public const string SocketVariable = "NOTIFY_SOCKET";
    public const string WatchdogUsecVariable = "WATCHDOG_USEC";
    public const string WatchdogPidVariable = "WATCHDOG_PID";

    private readonly Socket? _socket;
    private readonly UnixDomainSocketEndPoint? _endPoint;

    private SystemdNotify(string? path, long watchdogIntervalMs)
    {
        WatchdogIntervalMs = watchdogIntervalMs;
        if (string.IsNullOrEmpty(path) || (path[0] != '/' && path[0] != '@'))
            return;
        try
        {
            _endPoint = new UnixDomainSocketEndPoint(path[0] == '@' ? "\0" + path[1..] : path);
            _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        }
        catch (Exception e) when (e is SocketException or ArgumentException)
        {
            _socket?.Dispose();
            _socket = null;
        }
    }

    /// <summary>A notifier that sends nothing.</summary>
    public static SystemdNotify None { get; } = new(null, 0);

    /// <summary>True when systemd (or anything else) listens on <c>NOTIFY_SOCKET</c>.</summary>
    public bool Enabled => _socket is not null;

    /// <summary>How often <see cref="Watchdog"/> is due, in ms (half of <c>WATCHDOG_USEC</c>); 0 without a watchdog.</summary>
    public long WatchdogIntervalMs { get; }

    /// <summary>Reads and removes the variables (sd_notify's <c>unset_environment</c>). The watchdog is this
    /// process's only when <c>WATCHDOG_PID</c> is unset or names it.</summary>
    public static SystemdNotify FromEnvironment(int pid)
    {
        string? path = Environment.GetEnvironmentVariable(SocketVariable);
        string? usecText = Environment.GetEnvironmentVariable(WatchdogUsecVariable);
        string? pidText = Environment.GetEnvironmentVariable(WatchdogPidVariable);
        Environment.SetEnvironmentVariable(SocketVariable, null);
        Environment.SetEnvironmentVariable(WatchdogUsecVariable, null);
        Environment.SetEnvironmentVariable(WatchdogPidVariable, null);
        long interval = 0;
        if (long.TryParse(usecText, NumberStyles.None, CultureInfo.InvariantCulture, out long usec) && usec > 0
            && (pidText is null || (int.TryParse(pidText, NumberStyles.None, CultureInfo.InvariantCulture, out int wpid) && wpid == pid)))
            interval = Math.Max(1, usec / 2000);
        return path is null && interval == 0 ? None : new SystemdNotify(path, interval);
    }

    public void Ready(int mainPid, string status) =>
        Send($"READY=1\nSTATUS={status}\nMAINPID={mainPid.ToString(CultureInfo.InvariantCulture)}");

    public void Status(string status) => Send($"STATUS={status}");

    /// <summary>A reload begins; <see cref="Reloaded"/> ends it (systemd's notify-reload protocol).</summary>
    public void Reloading() =>
        Send($"RELOADING=1\nSTATUS=reloading configuration files\nMONOTONIC_USEC={MonotonicUsec().ToString(CultureInfo.InvariantCulture)}");

    public void Reloaded(string status) => Send($"READY=1\nSTATUS={status}");

    public void Stopping(string status) => Send($"STOPPING=1\nSTATUS={status}");

    public void Watchdog() => Send("WATCHDOG=1");

    /// <summary>CLOCK_MONOTONIC in microseconds (Stopwatch reads CLOCK_MONOTONIC on Linux).</summary>
    private static long MonotonicUsec() => (long)(Stopwatch.GetTimestamp() * (1_000_000.0 / Stopwatch.Frequency));

    private void Send(string message)
    {
        if (_socket is null)
            return;
        try
        {
            _socket.SendTo(Encoding.UTF8.GetBytes(message), SocketFlags.None, _endPoint!);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Best effort: systemd went away or the socket is wrong; the server goes on.
        }
    }

    public void Dispose() => _socket?.Dispose();
}
