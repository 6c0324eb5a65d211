using System.Globalization;

namespace Postmaster.Shmem.Backends;

/// <summary>
/// How the postmaster tells a backend to be a connection backend: the entry <see cref="Entry"/> with the argument
/// <c>CHANNEL MAXSESSIONS WORKER</c>: the acceptor's channel socket (its abstract name without the leading NUL), the
/// session limit (0 = none) and the connection worker's entry.
/// </summary>
internal static class ConnectionHostArgument
{
    /// <summary>The built-in entry of connection backends (not a worker users can configure: it is not in
    /// <see cref="BuiltinWorkers.Names"/>).</summary>
    public const string Entry = "connection-host";

    public static string Format(string channelName, int maxSessions, string workerEntry) =>
        $"{channelName.TrimStart('\0')} {maxSessions.ToString(CultureInfo.InvariantCulture)} {workerEntry}";

    public static bool TryParse(string argument, out string channelName, out int maxSessions, out string workerEntry)
    {
        channelName = workerEntry = "";
        maxSessions = 0;
        var parts = argument.Split(' ', 3);
        if (parts.Length != 3 || parts[0].Length == 0 || parts[2].Length == 0 ||
            !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out maxSessions))
            return false;
        channelName = "\0" + parts[0];
        workerEntry = parts[2];
        return true;
    }
}
