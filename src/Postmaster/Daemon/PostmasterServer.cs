using System.Collections.Concurrent;
using Postmaster.Configuration;
using Postmaster.Logging;
using Postmaster.Shmem;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.LockFile;
using Postmaster.Shmem.Os;
using Postmaster.Supervision;

namespace Postmaster.Daemon;

/// <summary>
/// The daemon's life: PostgreSQL's PostmasterMain order. Signals are routed first (so an early SIGTERM is queued,
/// not fatal), then the data directory is checked, the configuration loaded, the lock file created, shared memory
/// built, readiness reported, and the supervisor loop run until a shutdown completes. Everything created is torn
/// down in reverse order on every exit path; the lock file is removed last, after the final log line.
/// </summary>
internal static class PostmasterServer
{
    public const int ExitOk = 0;
    public const int ExitFailure = 1;

    public static int Run(StartOptions options)
    {
        var queue = new BlockingCollection<PmEvent>();
        using var signals = new SignalRouter(queue);
        // Until the configuration is read, messages go to a stderr log built only if something is logged.
        var bootstrap = new Lazy<ServerLog>(() => new ServerLog(LogSinks.Stderr, null, Severity.Log));
        ServerLog? configured = null;
        ServerLog Log() => configured ?? bootstrap.Value;
        DataDirLockFile? lockFile = null;
        InstanceMemory? memory = null;
        Connections.ConnectionAcceptor? acceptor = null;
        LogCollector? collector = null;
        System.Runtime.InteropServices.PosixSignalRegistration? rotate = null;
        ServerLog? rotateTarget = null;
        var doorbell = new RequestDoorbell(queue);
        // Taken out of the environment before any child exists: no backend may notify systemd for the postmaster.
        using var systemd = SystemdNotify.FromEnvironment(ProcessControl.CurrentPid);
        try
        {
            string dataDir = options.DataDir;
            if (ProcessControl.CurrentPid == 1)
                throw new StartupException("postmaster cannot run as process 1",
                    "As process 1 the .NET runtime reaps every child itself, so the supervisor would lose its backends' exit statuses.",
                    "\"postmaster start\" in the foreground runs as a small init when it is process 1 (see --init); or run it under tini or dumb-init.");
            // Nothing is written into the data directory before its lock is held: until then everything goes to
            // stderr (for a detached daemon, a pipe to its CLI) and the log file is opened after the lock.
            if (options.DaemonLog is not null)
                StartupOutput.UseStandardDescriptorsDirectly();
            if (!Directory.Exists(dataDir) && !File.Exists(dataDir) && DataDirectory.InitializeIfMissing(dataDir, DefaultConfigFile.Render()))
                Log().Log($"initialized new data directory \"{dataDir}\" with a default configuration");
            if (DataDirectory.IsRoot())
                Log().Warning("running postmaster as root is not recommended",
                    hint: "Run it as an unprivileged user that owns the data directory.");
            var dirStat = DataDirectory.Check(dataDir);
            var configPath = DataDirectory.ConfigPath(dataDir);
            var settings = LoadSettings(configPath, options.Overrides, bootstrap);
            if (settings is null)
                return ExitFailure;
            int staticBackends = StaticWorkers.CountOf(settings);
            if (staticBackends > settings.MaxBackends)
                throw new StartupException($"too many background workers: the configuration asks for {staticBackends}",
                    $"Up to {settings.MaxBackends} backends can run with the current settings.",
                    "Consider increasing the configuration parameter \"max_backends\".");

            var held = new HeldMessages();
            LockFileContents? previous = null;
            // `postmaster logrotate` signals whoever the lock file names: SIGUSR2 is handled from before the lock file
            // exists until after it is gone (see the finally), so it can never end this process by its default action.
            ProcessControl.UnignoreSignal(Signals.SIGUSR2);
            rotate = System.Runtime.InteropServices.PosixSignalRegistration.Create((System.Runtime.InteropServices.PosixSignal)Signals.SIGUSR2, ctx =>
            {
                ctx.Cancel = true;
                if (Volatile.Read(ref rotateTarget) is { } target)
                    StartupOutput.ReopenLogs(options, target);
            });
            lockFile = StartupOutput.CreateLockFile(dataDir, ListenLines(settings, dataDir), stale => CheckStaleSegment(previous = stale, settings, dataDir, dirStat), held, bootstrap);
            RunningSettingsFile.Remove(dataDir); // a previous server's, if it was killed: never shown as this one's
            configured = StartupOutput.OpenLog(options, settings, bootstrap, held);
            var log = configured;
            // Every backend's stdout and stderr: one pipe this process reads (the logging collector).
            collector = new LogCollector(log);
            Volatile.Write(ref rotateTarget, log);
            SharedMemoryPreflight.Run(settings, SharedMemoryBootstrap.Plan(settings).TotalSize(), log);
            memory = new InstanceMemory(settings, dataDir, dirStat, log, lockFile) { PreviousLockFile = previous };
            memory.Create();
            memory.PublishLogLevel(settings.LogMinMessages);
            WriteOptionsFile(dataDir, options.OptionsLine);

            if (settings.AcceptsConnections)
            {
                if (WorkerEntryCheck.Check(settings.ConnectionWorker, dataDir) is { } problem)
                    throw new StartupException($"invalid connection_worker: {problem.Message}", hint: problem.Hint);
                // Sockets exist before "ready" (PostgreSQL creates them before it starts its children).
                var listeners = Connections.Listeners.Open(settings, dataDir, log);
                try
                {
                    acceptor = new Connections.ConnectionAcceptor(log, listeners);
                }
                catch
                {
                    listeners.Dispose();
                    throw;
                }
            }

            void Publish(Settings current)
            {
                try
                {
                    RunningSettingsFile.Write(dataDir, ProcessControl.CurrentPid, current, options.Overrides, DateTimeOffset.UtcNow);
                }
                catch (Exception e) when (e is ShmemException or IOException or UnauthorizedAccessException)
                {
                    log.Warning($"could not write \"{RunningSettingsFile.PathIn(dataDir)}\": {e.Message}",
                        hint: "\"postmaster config\" cannot show the running server's settings until it is written.");
                }
            }
            Publish(settings);
            var live = new LiveSettings(settings, configPath, options.Overrides, Publish);
            var ops = new OsProcessOps(new BackendLauncher(BackendLauncher.DefaultExecutable) { LogFd = collector.WriteFd });
            // "Ready" comes from the loop's first transition; then it starts the static workers and the pool
            // (PostgreSQL starts its background workers after "ready to accept connections").
            var loop = new PostmasterLoop(queue, log, lockFile, live, memory, doorbell, ops, SystemClock.Instance, acceptor, () =>
            {
                log.Log($"postmaster is ready (PID {ProcessControl.CurrentPid}, data directory \"{dataDir}\", " +
                        $"{memory.Main.Mapping.Size} bytes of {KindName(memory.Main)} shared memory, key {memory.Main.Mapping.Key})");
                NotifyReady(options.ReadyFd);
            }, systemd) { SyncLogs = () => collector.Sync(TimeSpan.FromMilliseconds(200)) };
            return loop.Run();
        }
        catch (StartupException e)
        {
            Log().Fatal(e.Message, e.Detail, e.Hint);
            return ExitFailure;
        }
        catch (ShmemException e)
        {
            Log().Fatal(e.Message, e.Detail, e.Hint);
            return ExitFailure;
        }
        finally
        {
            // Order: remove the segments' OS names first (a new postmaster can then create its own at once), log the
            // last line, remove the lock file, and only then unmap: freeing a large populated segment takes the
            // kernel a while and nothing needs to wait for it.
            doorbell.Stop(); // before anything is unmapped
            acceptor?.Dispose(); // its thread writes session fields into the slots; the sockets and their files go
            memory?.RemoveNames();
            collector?.Dispose(); // no backend is left: what they wrote is drained into the log before the last line
            if (lockFile is not null)
            {
                if (lockFile.StillOurs()) // else another postmaster owns the directory now, and the file is its own
                    RunningSettingsFile.Remove(options.DataDir);
                Log().Log("postmaster is shut down");
                lockFile.Remove();
            }
            rotate?.Dispose();
            if (configured is not null)
                configured.Dispose();
            else if (bootstrap.IsValueCreated)
                bootstrap.Value.Dispose();
            memory?.Unmap();
        }
    }

    /// <summary>Lines 4 to 6 of postmaster.pid from the settings (port, first socket directory, first listen address).</summary>
    private static LockFileListenLines ListenLines(Settings settings, string dataDir) => !settings.AcceptsConnections
        ? LockFileListenLines.None
        : new LockFileListenLines(settings.Port,
            settings.UnixSocketDirectories.Count > 0 ? Path.GetFullPath(settings.UnixSocketDirectories[0], dataDir) : "",
            settings.ListenAddresses.Count > 0 ? settings.ListenAddresses[0] : "");

    /// <summary>Loads the configuration, logging every error with its file:line; null when it has errors.</summary>
    public static Settings? LoadSettings(string configPath, IReadOnlyList<string> overrides, Lazy<ServerLog> log)
    {
        try
        {
            return ConfigLoader.Load(configPath, overrides);
        }
        catch (ConfigException e)
        {
            foreach (var err in e.Errors)
                log.Value.Write(Severity.Log, err.Message, hint: err.Hint);
            log.Value.Fatal($"configuration file \"{configPath}\" contains errors");
            return null;
        }
    }

    public static ServerLog CreateLog(Settings settings, string dataDir)
    {
        var sinks = settings.LogDestination switch
        {
            LogDestination.Json => LogSinks.Json,
            LogDestination.Both => LogSinks.Stderr | LogSinks.Json,
            _ => LogSinks.Stderr,
        };
        string? dir = null;
        if (sinks.HasFlag(LogSinks.Json))
        {
            dir = settings.ResolveLogDirectory(dataDir);
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        return new ServerLog(sinks, dir, settings.LogMinMessages, rotation: settings.LogRotation);
    }


    /// <summary>A stale lock file may name a segment that old processes still use: refuse then (PostgreSQL's
    /// PGSharedMemoryIsInUse check on line 7).</summary>
    private static void CheckStaleSegment(LockFileContents stale, Settings settings, string dataDir, FileStat dirStat)
    {
        if (SharedMemoryBootstrap.RecordedSegmentOf(stale, SharedMemoryBootstrap.KindOf(settings.SharedMemoryType)) is not { } recorded)
            return;
        var (kind, key) = (recorded.Kind, recorded.Key);
        var (state, id, _) = MainSegment.Classify(kind, key, dirStat);
        if (state is SegmentState.Attached or SegmentState.AnalysisFailure)
            throw MainSegment.InUse(new MainSegmentSpec(kind, dataDir, dirStat, HugePagesMode.Off), key, id);
    }

    /// <summary>DIR/postmaster.opts, mode 0600 whatever the umask (written to a new file and renamed into place).</summary>
    private static void WriteOptionsFile(string dataDir, string line) =>
        OwnerOnlyFile.WriteAtomically(Path.Combine(dataDir, DataDirectory.OptionsFileName), line + "\n");

    private static void NotifyReady(int? readyFd)
    {
        if (readyFd is int fd)
        {
            ProcessSpawner.TryWrite(fd, "ready\n");
            ProcessSpawner.Close(fd);
        }
    }

    private static string KindName(MainSegment m) => m.Mapping.Kind == Shmem.Segments.SegmentKind.SysV ? "System V" : "POSIX";
}
