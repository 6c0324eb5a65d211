using Postmaster.Configuration;
using Postmaster.Logging;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Os;
using Postmaster.Supervision;
using Postmaster.Tests.Configuration;
using Xunit;

namespace Postmaster.Tests.Units;

/// <summary>The supervisor's transition table and its supervision rules, without processes (fake clock, scripted starts).</summary>
public sealed class StateMachineTests
{
    private static PmSnapshot S(PmState state, ShutdownMode shutdown = ShutdownMode.None, bool abnormal = false) =>
        new(state, shutdown, abnormal);

    public static TheoryData<PmState, ShutdownMode, bool, PmInput, PmState, ShutdownMode, bool, PmAction> Table => new()
    {
        // start-up
        { PmState.Starting, ShutdownMode.None, false, PmInput.StartupDone, PmState.Run, ShutdownMode.None, false, PmAction.StartBackends },
        { PmState.Starting, ShutdownMode.None, false, PmInput.FastShutdown, PmState.Exit, ShutdownMode.Fast, false, PmAction.None },
        { PmState.Starting, ShutdownMode.None, false, PmInput.FullRestartNeeded, PmState.Exit, ShutdownMode.None, true, PmAction.None },
        // shutdowns from Run
        { PmState.Run, ShutdownMode.None, false, PmInput.SmartShutdown, PmState.SmartWaitSessions, ShutdownMode.Smart, false, PmAction.StopPool },
        { PmState.Run, ShutdownMode.None, false, PmInput.FastShutdown, PmState.WaitBackends, ShutdownMode.Fast, false, PmAction.TerminateAll | PmAction.ArmKillDeadline },
        { PmState.Run, ShutdownMode.None, false, PmInput.ImmediateShutdown, PmState.WaitBackends, ShutdownMode.Immediate, false, PmAction.QuitAll | PmAction.ArmKillDeadline },
        // smart shutdown: sessions first, then everyone; escalation is one-way
        { PmState.SmartWaitSessions, ShutdownMode.Smart, false, PmInput.NoSessions, PmState.WaitBackends, ShutdownMode.Smart, false, PmAction.TerminateAll },
        { PmState.SmartWaitSessions, ShutdownMode.Smart, false, PmInput.SmartShutdown, PmState.SmartWaitSessions, ShutdownMode.Smart, false, PmAction.None },
        { PmState.SmartWaitSessions, ShutdownMode.Smart, false, PmInput.FastShutdown, PmState.WaitBackends, ShutdownMode.Fast, false, PmAction.TerminateAll | PmAction.ArmKillDeadline },
        { PmState.WaitBackends, ShutdownMode.Fast, false, PmInput.SmartShutdown, PmState.WaitBackends, ShutdownMode.Fast, false, PmAction.None },
        { PmState.WaitBackends, ShutdownMode.Fast, false, PmInput.ImmediateShutdown, PmState.WaitBackends, ShutdownMode.Immediate, false, PmAction.QuitAll | PmAction.ArmKillDeadline },
        { PmState.WaitBackends, ShutdownMode.Fast, false, PmInput.NoChildren, PmState.Exit, ShutdownMode.Fast, false, PmAction.None },
        // a crash during a smart or fast shutdown: everyone gets SIGQUIT, no rebuild, exit 1
        { PmState.SmartWaitSessions, ShutdownMode.Smart, false, PmInput.FullRestartNeeded, PmState.WaitBackends, ShutdownMode.Immediate, true, PmAction.QuitAll | PmAction.ArmKillDeadline },
        { PmState.WaitBackends, ShutdownMode.Fast, false, PmInput.FullRestartNeeded, PmState.WaitBackends, ShutdownMode.Immediate, true, PmAction.QuitAll | PmAction.ArmKillDeadline },
        { PmState.WaitBackends, ShutdownMode.Immediate, false, PmInput.FullRestartNeeded, PmState.WaitBackends, ShutdownMode.Immediate, true, PmAction.None },
        // crash restart
        { PmState.Run, ShutdownMode.None, false, PmInput.FullRestartNeeded, PmState.CrashWaitBackends, ShutdownMode.None, true, PmAction.QuitAll | PmAction.ArmKillDeadline },
        { PmState.CrashWaitBackends, ShutdownMode.None, true, PmInput.FullRestartNeeded, PmState.CrashWaitBackends, ShutdownMode.None, true, PmAction.None },
        { PmState.CrashWaitBackends, ShutdownMode.None, true, PmInput.NoChildren, PmState.Reinit, ShutdownMode.None, true, PmAction.Reinitialize },
        { PmState.Reinit, ShutdownMode.None, true, PmInput.ReinitDone, PmState.Run, ShutdownMode.None, false, PmAction.StartBackends },
        { PmState.Reinit, ShutdownMode.None, true, PmInput.ReinitFailed, PmState.Exit, ShutdownMode.None, true, PmAction.None },
        // SIGTERM during a crash wait: remembered, then exit instead of the rebuild
        { PmState.CrashWaitBackends, ShutdownMode.None, true, PmInput.SmartShutdown, PmState.CrashWaitBackends, ShutdownMode.Smart, true, PmAction.None },
        { PmState.CrashWaitBackends, ShutdownMode.Smart, true, PmInput.NoChildren, PmState.Exit, ShutdownMode.Smart, true, PmAction.None },
        { PmState.CrashWaitBackends, ShutdownMode.None, true, PmInput.ImmediateShutdown, PmState.CrashWaitBackends, ShutdownMode.Immediate, true, PmAction.None },
        // inputs that do not apply
        { PmState.Run, ShutdownMode.None, false, PmInput.NoChildren, PmState.Run, ShutdownMode.None, false, PmAction.None },
        { PmState.Run, ShutdownMode.None, false, PmInput.NoSessions, PmState.Run, ShutdownMode.None, false, PmAction.None },
        { PmState.Run, ShutdownMode.None, false, PmInput.ReinitDone, PmState.Run, ShutdownMode.None, false, PmAction.None },
        { PmState.Exit, ShutdownMode.Fast, false, PmInput.FullRestartNeeded, PmState.Exit, ShutdownMode.Fast, false, PmAction.None },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Transition_table(PmState from, ShutdownMode shutdown, bool abnormal, PmInput input,
        PmState to, ShutdownMode nextShutdown, bool nextAbnormal, PmAction actions)
    {
        var step = PmStateMachine.Next(S(from, shutdown, abnormal), input);
        Assert.Equal(S(to, nextShutdown, nextAbnormal), step.Next);
        Assert.Equal(actions, step.Actions);
    }

    [Fact]
    public void Every_state_and_input_has_a_defined_outcome_and_exit_is_final()
    {
        foreach (PmState state in Enum.GetValues<PmState>())
            foreach (ShutdownMode mode in Enum.GetValues<ShutdownMode>())
                foreach (PmInput input in Enum.GetValues<PmInput>())
                {
                    var step = PmStateMachine.Next(S(state, mode), input);
                    Assert.True(step.Next.Shutdown >= mode, $"{state}/{mode} + {input} weakened the shutdown");
                    if (state == PmState.Exit)
                        Assert.Equal(S(state, mode), step.Next);
                    if (mode != ShutdownMode.None && state != PmState.Run) // (Run with a shutdown is not a reachable snapshot)
                        Assert.NotEqual(PmState.Run, step.Next.State); // once shutting down, never running again
                }
    }

    [Fact]
    public void Lock_file_status_and_acceptance_follow_the_state()
    {
        Assert.Equal("ready   ", PmStateMachine.StatusWord(PmState.Run));
        Assert.Equal("starting", PmStateMachine.StatusWord(PmState.CrashWaitBackends));
        Assert.Equal("starting", PmStateMachine.StatusWord(PmState.Reinit));
        Assert.Equal("stopping", PmStateMachine.StatusWord(PmState.SmartWaitSessions));
        Assert.Equal("stopping", PmStateMachine.StatusWord(PmState.Exit));
        Assert.True(PmStateMachine.AcceptsNewBackends(S(PmState.Run)));
        Assert.False(PmStateMachine.AcceptsNewBackends(S(PmState.SmartWaitSessions, ShutdownMode.Smart)));
        Assert.False(PmStateMachine.AcceptsNewBackends(S(PmState.CrashWaitBackends)));
        Assert.True(PmStateMachine.AcceptsReload(S(PmState.SmartWaitSessions, ShutdownMode.Smart)));
        Assert.True(PmStateMachine.AcceptsReload(S(PmState.CrashWaitBackends, abnormal: true)));
        Assert.False(PmStateMachine.AcceptsReload(S(PmState.WaitBackends, ShutdownMode.Fast)));
    }

    // ---- static workers ----

    private sealed class FakeClock : IClock
    {
        public long NowMs { get; set; } = 1_000_000;

        public DateTime UtcNow => new DateTime(2026, 12, 1, 0, 0, 0, DateTimeKind.Utc).AddMilliseconds(NowMs);
    }

    private static Settings Workers(params string[] lines)
    {
        using var dir = new TempConfigDirectory();
        return ConfigLoader.Load(dir.WriteLines(lines), []);
    }

    private static readonly ServerLog QuietLog = new(LogSinks.Stderr, null, Severity.Panic);

    private sealed class Harness
    {
        private int _nextPid = 1000;
        public readonly FakeClock Clock = new();
        public readonly StaticWorkers Workers;
        public readonly List<WorkerSpec> Started = new();
        public readonly List<BackendProcess> Stopped = new();
        public string? FailStartsWith;

        public Harness(Settings settings)
        {
            Workers = new StaticWorkers(QuietLog, Clock);
            Workers.Apply(settings, p => { p.StopRequested = true; Stopped.Add(p); });
        }

        public List<BackendProcess> Running { get; } = new();

        public void StartDue() => Workers.StartDue((spec, restarts) =>
        {
            Started.Add(spec);
            if (FailStartsWith is { } error)
                return (null, error);
            var p = new BackendProcess(++_nextPid, Running.Count, _nextPid, spec, false, restarts, Clock.UtcNow, Clock.NowMs);
            Running.Add(p);
            return (p, null);
        });

        public void Exit(BackendProcess p, int code, long afterMs = 10)
        {
            Clock.NowMs += afterMs;
            Running.Remove(p);
            var end = code switch { 0 => BackendEnd.Done, 1 => BackendEnd.Failed, _ => BackendEnd.Crashed };
            Workers.OnExit(new ReapedChild(p, new ChildExit(p.Pid, code, null, false, code << 8), end, null), $"exited with exit code {code}", restartable: true);
        }

        public WorkerStatus Status(string name) => Workers.Snapshot().Single(w => w.Name == name);
    }

    [Fact]
    public void A_failing_worker_backs_off_exponentially_and_is_given_up_after_restart_limit()
    {
        var h = new Harness(Workers("worker.w.entry = idle", "worker.w.restart_delay = 100ms", "worker.w.restart_delay_max = 1s",
            "worker.w.restart_limit = 3"));
        h.StartDue();
        var expected = new[] { 100, 200, 400 };
        foreach (int delay in expected)
        {
            var p = Assert.Single(h.Running);
            h.Exit(p, 1);
            Assert.Equal(WorkerRunState.Backoff, h.Status("w").State);
            h.StartDue(); // not yet due: nothing starts
            Assert.Empty(h.Running);
            Assert.Equal(h.Clock.NowMs + delay, h.Workers.NextDeadline());
            h.Clock.NowMs += delay;
            h.StartDue();
        }
        h.Exit(Assert.Single(h.Running), 1);
        var st = h.Status("w");
        Assert.Equal(WorkerRunState.Failed, st.State);
        Assert.Equal(4, st.Failures);
        Assert.Equal(long.MaxValue, h.Workers.NextDeadline());
        h.Clock.NowMs += 3_600_000;
        h.StartDue();
        Assert.Empty(h.Running); // given up: never started again by itself
        Assert.Equal(4, h.Started.Count);
        Assert.Null(h.Workers.StartAgain("w"));
        h.StartDue();
        Assert.Single(h.Running);
        Assert.Equal(WorkerRunState.Running, h.Status("w").State);
        Assert.Equal(0, h.Status("w").Failures);
    }

    [Fact]
    public void A_start_that_fails_before_any_process_counts_toward_backoff_and_the_limit()
    {
        var h = new Harness(Workers("worker.w.entry = idle", "worker.w.restart_delay = 100ms", "worker.w.restart_limit = 2"));
        h.FailStartsWith = "could not access worker library";
        for (int i = 0; i < 10; i++)
        {
            h.StartDue();
            h.Clock.NowMs += 50;
        }
        Assert.True(h.Started.Count <= 3, $"{h.Started.Count} start attempts in 500 ms: no back-off");
        for (int i = 0; i < 100; i++)
        {
            h.StartDue();
            h.Clock.NowMs += 1000;
        }
        Assert.Equal(3, h.Started.Count);
        var st = h.Status("w");
        Assert.Equal(WorkerRunState.Failed, st.State);
        Assert.Contains("could not access worker library", st.LastExit);
    }

    [Fact]
    public void A_stable_run_resets_the_failure_count()
    {
        var h = new Harness(Workers("worker.w.entry = idle", "worker.w.restart_delay = 100ms", "worker.w.stable_period = 1s",
            "worker.w.restart_limit = 2"));
        h.StartDue();
        for (int i = 0; i < 5; i++)
        {
            h.Exit(Assert.Single(h.Running), 1, afterMs: 2000);
            Assert.Equal(1, h.Status("w").Failures);
            h.Clock.NowMs += 100;
            h.StartDue();
        }
        Assert.Equal(WorkerRunState.Running, h.Status("w").State);
    }

    [Fact]
    public void Terminated_worker_is_stopped_until_started_again_and_done_worker_is_not_restarted()
    {
        var h = new Harness(Workers("worker.a.entry = idle", "worker.b.entry = idle", "worker.b.restart = on-failure"));
        h.StartDue();
        Assert.Equal(2, h.Running.Count);
        var a = h.Running.Single(p => p.Spec.Name == "a");
        h.Workers.MarkOperatorStop(a);
        a.StopRequested = true;
        h.Exit(a, 1);
        Assert.Equal(WorkerRunState.Stopped, h.Status("a").State);
        h.Clock.NowMs += 3_600_000;
        h.StartDue();
        Assert.DoesNotContain(h.Running, p => p.Spec.Name == "a");
        h.Exit(h.Running.Single(p => p.Spec.Name == "b"), 0);
        Assert.Equal(WorkerRunState.Done, h.Status("b").State);
        Assert.Null(h.Workers.StartAgain("a"));
        h.StartDue();
        Assert.Contains(h.Running, p => p.Spec.Name == "a");
        Assert.Equal("background worker \"a\" is already running", h.Workers.StartAgain("a"));
        Assert.Contains("configured: a, b", h.Workers.StartAgain("zzz"));
    }

    [Fact]
    public void Reload_removes_stops_and_readds_workers()
    {
        var h = new Harness(Workers("worker.a.entry = idle", "worker.a.count = 2"));
        h.StartDue();
        Assert.Equal(new[] { "a.1", "a.2" }, h.Running.Select(p => p.Spec.Name).Order());
        h.Workers.Apply(Workers("worker.a.entry = idle"), p => { p.StopRequested = true; h.Stopped.Add(p); });
        Assert.Equal(2, h.Stopped.Count); // a.1 and a.2 are gone from the configuration ("a" is new)
        foreach (var p in h.Running.ToList())
            h.Exit(p, 1);
        h.StartDue();
        Assert.Equal("a", Assert.Single(h.Running).Spec.Name);
        Assert.Equal(new[] { "a" }, h.Workers.Snapshot().Select(w => w.Name));
    }

    [Fact]
    public void A_zero_restart_delay_never_makes_failing_starts_spin()
    {
        var h = new Harness(Workers("worker.w.entry = idle", "worker.w.restart_delay = 0", "worker.w.restart_delay_max = 0",
            "worker.w.restart_limit = 0", "worker.w.stable_period = 0"));
        h.FailStartsWith = "could not access worker library";
        for (int i = 0; i < 1000; i++)
        {
            h.StartDue();
            h.Clock.NowMs += 1; // one second of loop iterations, 1 ms apart
        }
        Assert.True(h.Started.Count <= 12, $"{h.Started.Count} start attempts within 1 s");
        Assert.Equal(WorkerRunState.Backoff, h.Status("w").State);
        Assert.True(h.Status("w").Failures >= 2, "start failures must accumulate even with stable_period = 0");
    }

    [Fact]
    public void A_reload_restart_pending_while_an_operator_stopped_the_worker_does_not_outlive_the_stop()
    {
        var h = new Harness(Workers("worker.w.entry = idle", "worker.w.restart = never"));
        h.StartDue();
        var p = Assert.Single(h.Running);
        h.Workers.MarkOperatorStop(p);
        p.StopRequested = true;
        h.Workers.Apply(Workers("worker.w.entry = exit", "worker.w.restart = never"), q => { q.StopRequested = true; h.Stopped.Add(q); });
        h.Exit(p, 1);
        Assert.Equal(WorkerRunState.Stopped, h.Status("w").State);
        Assert.Null(h.Workers.StartAgain("w"));
        h.StartDue();
        h.Exit(Assert.Single(h.Running), 1);
        Assert.Equal(WorkerRunState.Failed, h.Status("w").State); // restart = never: the policy applies again
        h.StartDue();
        Assert.Empty(h.Running);
    }
}
