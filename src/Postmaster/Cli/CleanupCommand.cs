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
/// stale lock file) without starting a server (the historical ipcclean, done safely). Refuses while the server runs,
/// and while any process of the old instance is still attached, naming the pids it can find.
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
            var kind = contents?.ShmType == "posix" ? SegmentKind.Posix
                : contents?.ShmType == "sysv" ? SegmentKind.SysV
                : SharedMemoryBootstrap.KindOf(LoadKind(dir));
            var keys = new List<long>();
            if (contents?.ShmKey is long recorded && recorded != 0)
                keys.Add(recorded);
            long first = (long)(dirStat.Value.Inode & 0x7FFF_FFFF);
            if (!keys.Contains(first))
                keys.Add(first == 0 ? 1 : first);
            int removed = 0;
            var oldControl = Shmem.Dsm.DsmHandle.Invalid;
            foreach (long key in keys)
            {
                var (state, id, header) = MainSegment.Classify(kind, key, dirStat.Value);
                if (state is SegmentState.Attached or SegmentState.AnalysisFailure)
                {
                    var e = MainSegment.InUse(new MainSegmentSpec(kind, dir, dirStat.Value, HugePagesMode.Off), key, id);
                    Report.Error(e.Message, e.Detail, e.Hint);
                    return ExitCodes.Failure;
                }
                if (state == SegmentState.Unattached &&
                    MainSegment.RemoveOrphan(kind, key, id, header!.Value, shmemLog, o => oldControl = new Shmem.Dsm.DsmHandle(o.Header.DsmControlHandle)))
                    removed++;
            }
            // Dynamic shared memory: what the old control segment lists, and everything tagged with this instance.
            var dsmType = contents?.DsmType switch
            {
                "sysv" => Shmem.Dsm.DsmType.SysV,
                "mmap" => Shmem.Dsm.DsmType.Mmap,
                "posix" => Shmem.Dsm.DsmType.Posix,
                _ => SharedMemoryBootstrap.DsmTypeOf(LoadDsmType(dir)),
            };
            var dsm = Shmem.Dsm.DsmOrphanCleanup.Run(Shmem.Dsm.DsmConfig.For(dsmType, dir, dirStat.Value), oldControl, shmemLog);
            removed += dsm.ListedRemoved + dsm.UntrackedRemoved;
            string pidFile = Path.Combine(dir, DataDirLockFile.FileName);
            if (File.Exists(pidFile))
            {
                File.Delete(pidFile);
                removed++;
            }
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
