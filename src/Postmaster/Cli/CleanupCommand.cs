using System.CommandLine;
using Postmaster.Configuration;
using Postmaster.Daemon;
using Postmaster.Logging;
using Postmaster.Shmem;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Segments;

namespace Postmaster.Cli;

/// <summary>
/// <c>postmaster cleanup -D DIR</c>: removes what a dead instance left (its main segment and everything it lists, the
/// stale lock file) without starting a server (the historical ipcclean, done safely). Main segments of both types are
/// looked for (<see cref="MainSegmentOrphans"/>) and DSM objects of every implementation, whatever the configuration
/// says now; only what carries this data directory's identity is removed. Refuses while the server runs, and while any
/// process of the old instance is still attached, naming the pids it can find.
/// </summary>
public static class CleanupCommand
{
    public static Command Create()
    {
        var cmd = new Command("cleanup", "Remove the shared memory and lock file a crashed server left behind") { CliOptions.DataDir };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            if (dir is null)
                return ExitCodes.Failure;
            var dirStat = FileStat.TryStat(dir);
            if (dirStat is null)
            {
                Report.Error($"data directory \"{dir}\" does not exist");
                return ExitCodes.NoDataDirectory;
            }
            var (locked, contents) = DataDirLockFile.Probe(dir);
            if (locked)
            {
                Report.Error($"a server is running in data directory \"{dir}\" (PID {contents?.Pid})",
                    hint: "Stop it with \"postmaster stop\"; there is nothing to clean up while it runs.");
                return ExitCodes.Failure;
            }
            using var log = new ServerLog(LogSinks.Stderr, null, Severity.Log);
            var shmemLog = new ShmemLogAdapter(log);
            // Main segments of every type the dead instance could have used (the recorded one, and a probe of SysV and
            // POSIX from the first key: shared_memory_type may have changed since), each naming its DSM control segment.
            var recorded = SharedMemoryBootstrap.RecordedSegmentOf(contents, SharedMemoryBootstrap.KindOf(LoadKind(dir)));
            var evidence = new Shmem.Dsm.DsmOrphanEvidence();
            if (contents is not null)
                evidence.Add(contents.Pid, contents.StartTime);
            var oldControls = new List<Shmem.Dsm.DsmHandle>();
            MainSegmentCleanup main;
            try
            {
                main = MainSegmentOrphans.RemoveAll(dir, dirStat.Value, recorded, shmemLog,
                    o => oldControls.Add(new Shmem.Dsm.DsmHandle(o.Header.DsmControlHandle)), evidence);
            }
            catch (Shmem.Errors.ShmemException e)
            {
                Report.Error(e.Message, e.Detail, e.Hint);
                return ExitCodes.Failure;
            }
            int removed = main.Removed;
            // Dynamic shared memory: what the old control segments list (attached whatever implementation made them),
            // and everything tagged with this instance, of every implementation.
            var dsmType = Shmem.Instance.SharedMemoryDescriptor.TryParseDsmType(contents?.DsmType, out var recordedDsm)
                ? recordedDsm
                : SharedMemoryBootstrap.DsmTypeOf(LoadDsmType(dir));
            var dsm = Shmem.Dsm.DsmOrphanCleanup.Run(Shmem.Dsm.DsmConfig.For(dsmType, dir, dirStat.Value), oldControls, shmemLog, evidence);
            removed += dsm.ListedRemoved + dsm.UntrackedRemoved;
            string pidFile = Path.Combine(dir, DataDirLockFile.FileName);
            if (File.Exists(pidFile))
            {
                File.Delete(pidFile);
                removed++;
            }
            RunningSettingsFile.Remove(dir); // the dead server's settings in effect; not counted: the objects are its IPC and lock file
            Console.WriteLine(removed == 0 ? "nothing to clean up" : $"cleaned up {removed} object{(removed == 1 ? "" : "s")} left by a previous server");
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static SharedMemoryType LoadKind(string dir) => LoadSettings(dir)?.SharedMemoryType ?? SharedMemoryType.SysV;

    private static DynamicSharedMemoryType LoadDsmType(string dir) =>
        LoadSettings(dir)?.DynamicSharedMemoryType ?? DynamicSharedMemoryType.Posix;

    /// <summary>The configuration, or null when it is broken: a broken configuration must not prevent cleanup
    /// (the defaults are used then).</summary>
    private static Settings? LoadSettings(string dir)
    {
        try
        {
            return ConfigLoader.Load(DataDirectory.ConfigPath(dir), Array.Empty<string>());
        }
        catch (ConfigException)
        {
            return null;
        }
    }
}
