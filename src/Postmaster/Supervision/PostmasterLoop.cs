using System.Collections.Concurrent;
using Postmaster.Configuration;
using Postmaster.Daemon;
using Postmaster.Logging;
using Postmaster.Shmem.LockFile;

namespace Postmaster.Supervision;

/// <summary>
/// The supervisor's single loop: takes one event at a time from the queue the signal handlers feed, and runs the
/// periodic checks (lock-file recheck) on its deadline. Shutdown escalates one way only (smart → fast → immediate);
/// a weaker request is ignored, and SIGHUP is ignored once a fast or immediate shutdown has begun.
/// </summary>
public sealed class PostmasterLoop
{
    /// <summary>How often the loop verifies that postmaster.pid is still ours (PostgreSQL: once a minute).</summary>
    public static readonly TimeSpan LockFileRecheckInterval = TimeSpan.FromSeconds(60);

    private readonly BlockingCollection<PmEvent> _queue;
    private readonly ServerLog _log;
    private readonly DataDirLockFile _lockFile;
    private readonly string _configPath;
    private readonly IReadOnlyList<string> _overrides;
    private Settings _settings;
    private ShutdownMode _shutdown = ShutdownMode.None;
    private long _nextLockCheck;

    public PostmasterLoop(BlockingCollection<PmEvent> queue, ServerLog log, DataDirLockFile lockFile, Settings settings,
        string configPath, IReadOnlyList<string> overrides)
    {
        _queue = queue;
        _log = log;
        _lockFile = lockFile;
        _settings = settings;
        _configPath = configPath;
        _overrides = overrides;
    }

    public Settings Settings => _settings;

    /// <summary>Runs until shutdown is complete; returns the process exit code.</summary>
    public int Run()
    {
        _nextLockCheck = Environment.TickCount64 + (long)LockFileRecheckInterval.TotalMilliseconds;
        while (true)
        {
            int wait = (int)Math.Max(0, _nextLockCheck - Environment.TickCount64);
            if (_queue.TryTake(out var ev, wait))
                Handle(ev);
            if (Environment.TickCount64 >= _nextLockCheck)
                RecheckLockFile();
            if (_shutdown != ShutdownMode.None && NoChildrenLeft())
                return PostmasterServer.ExitOk;
        }
    }

    private void Handle(PmEvent ev)
    {
        switch (ev)
        {
            case PmEvent.ShutdownRequested s:
                RequestShutdown(s.Mode);
                break;
            case PmEvent.ReloadRequested:
                Reload();
                break;
            case PmEvent.ChildSignal or PmEvent.PmSignal:
                break; // no children yet
            default:
                throw new InvalidOperationException($"internal error: unknown supervisor event {ev}; please report this");
        }
    }

    private void RequestShutdown(ShutdownMode mode)
    {
        if (mode <= _shutdown)
            return; // escalation is one-way
        _shutdown = mode;
        _log.Log(mode switch
        {
            ShutdownMode.Smart => "received smart shutdown request",
            ShutdownMode.Fast => "received fast shutdown request",
            _ => "received immediate shutdown request",
        });
        _lockFile.SetStatus(PmStatus.Stopping);
        SystemdNotify.Send("STOPPING=1");
    }

    private void Reload()
    {
        if (_shutdown >= ShutdownMode.Fast)
            return;
        _log.Log("received SIGHUP, reloading configuration files");
        try
        {
            var result = ConfigLoader.Reload(_settings, _configPath, _overrides);
            foreach (var change in result.Changed)
                _log.Log(change);
            foreach (var pending in result.PendingRestart)
                _log.Log(pending);
            _settings = result.Next;
            _log.MinimumSeverity = PostmasterServer.ToSeverity(_settings.LogMinMessages);
        }
        catch (ConfigException e)
        {
            foreach (var err in e.Errors)
                _log.Write(Severity.Log, err.Message, hint: err.Hint);
            _log.Log($"configuration file \"{_configPath}\" contains errors; no changes were applied");
        }
    }

    private void RecheckLockFile()
    {
        _nextLockCheck = Environment.TickCount64 + (long)LockFileRecheckInterval.TotalMilliseconds;
        if (_lockFile.StillOurs())
            return;
        _log.Log($"lock file \"{_lockFile.Path}\" was removed or replaced");
        _log.Log("performing immediate shutdown because data directory lock file is invalid");
        RequestShutdown(ShutdownMode.Immediate);
    }

    private static bool NoChildrenLeft() => true;
}
