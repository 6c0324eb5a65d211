namespace Postmaster.Supervision;

/// <summary>Shutdown modes, ordered: a request is acted on only when stronger than the current one.</summary>
public enum ShutdownMode
{
    None = 0,
    Smart = 1,
    Fast = 2,
    Immediate = 3,
}

/// <summary>
/// The supervisor's states (PostgreSQL's <c>pmState</c>). Exactly one is current; only
/// <see cref="PmStateMachine.Next"/> decides a change.
/// </summary>
public enum PmState
{
    /// <summary>Shared memory is being built; nothing runs yet. Lock file: "starting".</summary>
    Starting,

    /// <summary>Normal operation: backends are started, restarted and spawned. Lock file: "ready".</summary>
    Run,

    /// <summary>Smart shutdown: nothing new starts; the dynamic workers ("sessions") finish on their own, the pool is
    /// stopped. Lock file: "stopping".</summary>
    SmartWaitSessions,

    /// <summary>A shutdown signalled every backend (SIGTERM, or SIGQUIT for immediate) and waits for them to exit;
    /// SIGKILL after shutdown_kill_timeout (fast and immediate). Lock file: "stopping".</summary>
    WaitBackends,

    /// <summary>A crash left shared memory in doubt: every backend got SIGQUIT; once none is left, shared memory is
    /// rebuilt (or, if a shutdown was requested meanwhile, the server exits). Lock file: "starting".</summary>
    CrashWaitBackends,

    /// <summary>Shared memory is being destroyed and created anew. Lock file: "starting".</summary>
    Reinit,

    /// <summary>Done: the loop returns and the server cleans up. Lock file: "stopping" until it is removed.</summary>
    Exit,
}

/// <summary>What can happen to the supervisor, as the state machine sees it.</summary>
public enum PmInput
{
    /// <summary>Shared memory exists and the lock file names it.</summary>
    StartupDone,

    /// <summary>SIGTERM.</summary>
    SmartShutdown,

    /// <summary>SIGINT.</summary>
    FastShutdown,

    /// <summary>SIGQUIT, an invalid lock file, or a fault in the supervisor itself.</summary>
    ImmediateShutdown,

    /// <summary>A backend died in a way that leaves shared memory in doubt, or shared memory failed validation.</summary>
    FullRestartNeeded,

    /// <summary>No dynamic worker is left (checked after every event).</summary>
    NoSessions,

    /// <summary>No child process is left (checked after every event).</summary>
    NoChildren,

    /// <summary>Shared memory was rebuilt.</summary>
    ReinitDone,

    /// <summary>Shared memory could not be rebuilt, or the crash-loop breaker / restart_after_crash says stop.</summary>
    ReinitFailed,
}

/// <summary>What the supervisor must do on a transition, in this order.</summary>
[Flags]
public enum PmAction
{
    None = 0,

    /// <summary>SIGTERM to idle pool members.</summary>
    StopPool = 1 << 0,

    /// <summary>SIGTERM to every backend not already asked to stop.</summary>
    TerminateAll = 1 << 1,

    /// <summary>SIGQUIT to every backend.</summary>
    QuitAll = 1 << 2,

    /// <summary>SIGKILL whatever is left after shutdown_kill_timeout.</summary>
    ArmKillDeadline = 1 << 3,

    /// <summary>Destroy and recreate shared memory.</summary>
    Reinitialize = 1 << 4,

    /// <summary>Start the static workers and the pool (after the transition to <see cref="PmState.Run"/>).</summary>
    StartBackends = 1 << 5,
}

/// <summary>The supervisor's whole state: where it is, the strongest shutdown asked for, and whether the end will be
/// abnormal (a crash was seen and not recovered from: exit 1).</summary>
public readonly record struct PmSnapshot(PmState State, ShutdownMode Shutdown, bool Abnormal)
{
    public static PmSnapshot Initial => new(PmState.Starting, ShutdownMode.None, false);
}

/// <summary>One transition: the next snapshot and the actions to perform.</summary>
public readonly record struct PmStep(PmSnapshot Next, PmAction Actions)
{
    public bool Changed(PmSnapshot from) => Next != from;
}

/// <summary>
/// The transition table (state × input → state, actions), pure and unit-tested; docs/architecture.md shows it as a
/// table. Rules that decide the ambiguous cases:
/// <list type="bullet">
/// <item>Shutdown escalates one way only (smart → fast → immediate); a weaker request changes nothing.</item>
/// <item>A crash during a shutdown does not rebuild shared memory: the shutdown continues (SIGQUIT to everyone) and
/// ends abnormally (exit 1).</item>
/// <item>A shutdown during a crash wait is remembered: once the backends are gone the server exits instead of
/// rebuilding shared memory (exit 1).</item>
/// <item>Inputs that do not apply to a state are ignored (the same snapshot, no action).</item>
/// </list>
/// </summary>
public static class PmStateMachine
{
    public static PmStep Next(PmSnapshot s, PmInput input)
    {
        var none = new PmStep(s, PmAction.None);
        if (s.State == PmState.Exit)
            return none;
        switch (input)
        {
            case PmInput.StartupDone:
                if (s.State != PmState.Starting)
                    return none;
                return s.Shutdown != ShutdownMode.None
                    ? new PmStep(s with { State = PmState.Exit }, PmAction.None)
                    : new PmStep(s with { State = PmState.Run }, PmAction.StartBackends);

            case PmInput.SmartShutdown:
            case PmInput.FastShutdown:
            case PmInput.ImmediateShutdown:
                return OnShutdown(s, input switch
                {
                    PmInput.SmartShutdown => ShutdownMode.Smart,
                    PmInput.FastShutdown => ShutdownMode.Fast,
                    _ => ShutdownMode.Immediate,
                });

            case PmInput.FullRestartNeeded:
                return s.State switch
                {
                    PmState.Run => new PmStep(s with { State = PmState.CrashWaitBackends, Abnormal = true },
                        PmAction.QuitAll | PmAction.ArmKillDeadline),
                    PmState.SmartWaitSessions => new PmStep(s with { State = PmState.WaitBackends, Shutdown = ShutdownMode.Immediate, Abnormal = true },
                        PmAction.QuitAll | PmAction.ArmKillDeadline),
                    PmState.WaitBackends when s.Shutdown < ShutdownMode.Immediate =>
                        new PmStep(s with { Shutdown = ShutdownMode.Immediate, Abnormal = true }, PmAction.QuitAll | PmAction.ArmKillDeadline),
                    PmState.WaitBackends => new PmStep(s with { Abnormal = true }, PmAction.None),
                    PmState.Starting => new PmStep(s with { State = PmState.Exit, Abnormal = true }, PmAction.None),
                    _ => none, // CrashWaitBackends, Reinit: already on it
                };

            case PmInput.NoSessions:
                return s.State == PmState.SmartWaitSessions
                    ? new PmStep(s with { State = PmState.WaitBackends }, PmAction.TerminateAll)
                    : none;

            case PmInput.NoChildren:
                return s.State switch
                {
                    PmState.WaitBackends => new PmStep(s with { State = PmState.Exit }, PmAction.None),
                    PmState.CrashWaitBackends when s.Shutdown != ShutdownMode.None =>
                        new PmStep(s with { State = PmState.Exit }, PmAction.None),
                    PmState.CrashWaitBackends => new PmStep(s with { State = PmState.Reinit }, PmAction.Reinitialize),
                    _ => none,
                };

            case PmInput.ReinitDone:
                if (s.State != PmState.Reinit)
                    return none;
                return s.Shutdown != ShutdownMode.None
                    ? new PmStep(s with { State = PmState.Exit }, PmAction.None)
                    : new PmStep(s with { State = PmState.Run, Abnormal = false }, PmAction.StartBackends);

            case PmInput.ReinitFailed:
                return s.State == PmState.Reinit ? new PmStep(s with { State = PmState.Exit, Abnormal = true }, PmAction.None) : none;

            default:
                return none;
        }
    }

    private static PmStep OnShutdown(PmSnapshot s, ShutdownMode mode)
    {
        if (mode <= s.Shutdown)
            return new PmStep(s, PmAction.None); // escalation is one-way
        var next = s with { Shutdown = mode };
        switch (s.State)
        {
            case PmState.Starting:
            case PmState.Reinit:
                // No backend exists: there is nothing to wait for.
                return new PmStep(next with { State = PmState.Exit }, PmAction.None);
            case PmState.CrashWaitBackends:
                // Everyone already got SIGQUIT; remember the request so the end is an exit, not a rebuild.
                return new PmStep(next, PmAction.None);
        }
        return mode switch
        {
            ShutdownMode.Smart => new PmStep(next with { State = PmState.SmartWaitSessions }, PmAction.StopPool),
            ShutdownMode.Fast => new PmStep(next with { State = PmState.WaitBackends }, PmAction.TerminateAll | PmAction.ArmKillDeadline),
            _ => new PmStep(next with { State = PmState.WaitBackends }, PmAction.QuitAll | PmAction.ArmKillDeadline),
        };
    }

    /// <summary>The lock file's status word (line 8) for a state.</summary>
    public static string StatusWord(PmState state) => state switch
    {
        PmState.Run => Shmem.LockFile.PmStatus.Ready,
        PmState.Starting or PmState.CrashWaitBackends or PmState.Reinit => Shmem.LockFile.PmStatus.Starting,
        _ => Shmem.LockFile.PmStatus.Stopping,
    };

    /// <summary>Spawn and start-worker requests are served only while running.</summary>
    public static bool AcceptsNewBackends(PmSnapshot s) => s.State == PmState.Run;

    /// <summary>A reload is applied unless a fast or immediate shutdown has begun (PostgreSQL ignores SIGHUP then).</summary>
    public static bool AcceptsReload(PmSnapshot s) => s.State != PmState.Exit && s.Shutdown < ShutdownMode.Fast;

    /// <summary>Static workers and the pool are (re)started only in <see cref="PmState.Run"/>.</summary>
    public static bool StartsBackends(PmSnapshot s) => s.State == PmState.Run;
}
