using System.Globalization;
using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.Backends;

/// <summary>
/// How the postmaster tells a backend to be a connection backend: the entry <see cref="Entry"/> with the argument
/// <c>CHANNEL MAXSESSIONS CONCURRENT POLICY LENGTH WORKER ARGUMENT</c>: the acceptor's channel socket (its abstract name
/// without the leading NUL), the session limit (0 = none), the sessions it serves at once (1 or more), the CPU scheduling policy (<c>batch</c> or <c>other</c>), the
/// connection worker's entry preceded by its length (an entry's path may hold spaces) and the worker's argument
/// (<c>connection_worker_argument</c>, possibly empty).
/// </summary>
internal static class ConnectionHostArgument
{
    /// <summary>The built-in entry of connection backends (not a worker users can configure: it is not in
    /// <see cref="BuiltinWorkers.Names"/>).</summary>
    public const string Entry = "connection-host";

    public static string Format(string channelName, int maxSessions, int concurrent, CpuSchedulingPolicy policy,
        string workerEntry, string workerArgument) =>
        string.Create(CultureInfo.InvariantCulture,
            $"{channelName.TrimStart('\0')} {maxSessions} {concurrent} {CpuScheduling.Name(policy)} {workerEntry.Length} {workerEntry} {workerArgument}");

    public static bool TryParse(string argument, out string channelName, out int maxSessions, out int concurrent,
        out CpuSchedulingPolicy policy, out string workerEntry, out string workerArgument)
    {
        channelName = workerEntry = workerArgument = "";
        maxSessions = concurrent = 0;
        policy = CpuSchedulingPolicy.Other;
        var parts = argument.Split(' ', 6);
        if (parts.Length != 6 || parts[0].Length == 0 ||
            !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out maxSessions) ||
            !int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out concurrent) || concurrent < 1 ||
            !CpuScheduling.TryParse(parts[3], out policy) ||
            !int.TryParse(parts[4], NumberStyles.None, CultureInfo.InvariantCulture, out int length) ||
            length == 0 || length >= parts[5].Length || parts[5][length] != ' ')
            return false;
        channelName = "\0" + parts[0];
        workerEntry = parts[5][..length];
        workerArgument = parts[5][(length + 1)..];
        return true;
    }
}
