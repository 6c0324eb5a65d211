using Postmaster.Logging;
using Postmaster.Shmem;

namespace Postmaster.Daemon;

/// <summary>Routes the shared-memory layer's reports into the server log.</summary>
internal sealed class ShmemLogAdapter(ServerLog log) : IShmemLogger
{
    public void Write(ShmemLogLevel level, string message) => log.Write(level switch
    {
        ShmemLogLevel.Debug => Severity.Debug1,
        ShmemLogLevel.Warning => Severity.Warning,
        _ => Severity.Log,
    }, message);
}
