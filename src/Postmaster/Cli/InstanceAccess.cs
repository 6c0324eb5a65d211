using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;

namespace Postmaster.Cli;

/// <summary>Attaches the running instance's shared memory for a CLI command (status, shmem, spawn, terminate).</summary>
internal static class InstanceAccess
{
    /// <summary>The running server (its pid proven) and its attached shared memory; null (after printing why) when
    /// there is none. The caller disposes both.</summary>
    public static (RunningServer Server, InstanceShmem Shmem)? AttachRunning(string dir)
    {
        DataDirectoryCheck.Require(dir, ExitCodes.Failure);
        var server = ServerControl.FindRunning(dir);
        var running = server?.Contents;
        if (server is null || running?.ShmKey is not long key || running.ShmId is not long id || running.TrimmedStatus == PmStatus.Starting)
        {
            server?.Dispose();
            Report.Error(server is null ? $"no server running in data directory \"{dir}\""
                : $"the server in data directory \"{dir}\" (PID {server.Pid}) is still starting");
            return null;
        }
        try
        {
            var dirStat = FileStat.TryStat(dir) ?? throw new ShmemException($"data directory \"{dir}\" vanished");
            var kind = SharedMemoryDescriptor.KindOr(running.ShmType, SegmentKind.SysV);
            return (server, InstanceShmem.Attach(kind, key, id, dirStat));
        }
        catch (ShmemException e)
        {
            server.Dispose();
            Report.Error(e.Message, e.Detail, e.Hint);
            return null;
        }
    }

    /// <summary>The running instance's DSM control segment, read-only (null when it cannot be attached).</summary>
    public static DsmControl? AttachDsm(InstanceShmem shmem, LockFileContents server, string dir)
    {
        var type = SharedMemoryDescriptor.DsmTypeOr(server.DsmType, DsmType.Posix);
        try
        {
            var dirStat = FileStat.TryStat(dir);
            return dirStat is null ? null : DsmControl.Attach(shmem, DsmConfig.For(type, dir, dirStat.Value));
        }
        catch (ShmemException)
        {
            return null; // stopping, or not created yet
        }
    }
}
