using System.Net;
using System.Net.Sockets;

namespace Postmaster.Shmem.Os;

/// <summary>A client's address as status, the slots and the log show it: <c>127.0.0.1:51234</c>,
/// <c>[::1]:51234</c>, or <c>[local]</c> for a Unix-domain socket (PostgreSQL's word).</summary>
internal static class PeerText
{
    public static string Of(Socket client)
    {
        try
        {
            return client.RemoteEndPoint switch
            {
                IPEndPoint ip when ip.AddressFamily == AddressFamily.InterNetworkV6 => $"[{ip.Address}]:{ip.Port}",
                IPEndPoint ip => $"{ip.Address}:{ip.Port}",
                _ => "[local]",
            };
        }
        catch (SocketException)
        {
            return "[unknown]"; // the client is already gone (ENOTCONN)
        }
    }
}
