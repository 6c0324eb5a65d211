using System.Net.Sockets;
using System.Text;

namespace Postmaster.Daemon;

/// <summary>sd_notify(3) for Type=notify units: READY=1, STOPPING=1, RELOADING=1, STATUS=. A no-op when
/// NOTIFY_SOCKET is unset. Best effort by design: a failure to notify never stops the server.</summary>
public static class SystemdNotify
{
    public static bool Send(string state)
    {
        var path = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        if (string.IsNullOrEmpty(path))
            return false;
        if (path[0] == '@')
            path = "\0" + path[1..];
        try
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(path));
            s.Send(Encoding.UTF8.GetBytes(state));
            return true;
        }
        catch (SocketException)
        {
            return false; // documented best effort: systemd went away or the socket is wrong
        }
    }
}
