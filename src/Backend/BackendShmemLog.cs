using Postmaster.Shmem;

namespace Postmaster.Backend;

/// <summary>Routes the shared-memory layer's reports (e.g. DSM warnings) into the backend's log.</summary>
internal sealed class BackendShmemLog(BackendLog log) : IShmemLogger
{
    public void Write(ShmemLogLevel level, string message) => log.Write(level switch
    {
        ShmemLogLevel.Debug => BackendLog.Debug1,
        ShmemLogLevel.Warning => BackendLog.Warning,
        _ => BackendLog.Log,
    }, message);
}
