using System.CommandLine;
using Postmaster.Daemon;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;

namespace Postmaster.Cli;

/// <summary>
/// <c>postmaster metrics</c>: the instance in Prometheus text, once (for node_exporter's textfile collector, or a
/// look by hand). The same text as the built-in <c>metrics</c> worker's <c>/metrics</c> (<see cref="InstanceMetrics"/>).
/// A data directory without a running server gives <c>postmaster_up 0</c> and exit 0: that is a value, not an error.
/// </summary>
public static class MetricsCommand
{
    public static Command Create()
    {
        var cmd = new Command("metrics", "Print the running server's metrics in Prometheus text format") { CliOptions.DataDir };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            DataDirectoryCheck.Require(dir, ExitCodes.Failure);
            if (!File.Exists(DataDirectory.ConfigPath(dir)))
                throw new CliException($"directory \"{dir}\" is not a data directory (no {DataDirectory.ConfigFileName})");
            Console.Write(Render(dir));
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static string Render(string dir)
    {
        using var server = ServerControl.FindRunning(dir);
        if (server is null)
            return InstanceMetrics.Down();
        var c = server.Contents;
        if (c.ShmKey is not long key || c.ShmId is not long id || FileStat.TryStat(dir) is not { } dirStat)
            return InstanceMetrics.Render(c, null, null, null);
        InstanceShmem shmem;
        try
        {
            shmem = InstanceShmem.Attach(SharedMemoryDescriptor.KindOr(c.ShmType, SegmentKind.SysV), key, id, dirStat);
        }
        catch (ShmemException)
        {
            return InstanceMetrics.Render(c, null, null, null); // starting, or rebuilding after a crash
        }
        using (shmem)
        {
            using var dsm = InstanceAccess.AttachDsm(shmem, c, dir);
            return InstanceMetrics.Render(c, shmem, dsm, SharedMemoryPreflight.Observe().DevShmFreeBytes);
        }
    }
}
