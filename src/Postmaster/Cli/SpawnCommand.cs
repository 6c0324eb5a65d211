using System.CommandLine;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Os;

namespace Postmaster.Cli;

/// <summary>
/// <c>postmaster spawn --worker ENTRY [--argument TEXT] [--name NAME]</c>: asks the running postmaster for a dynamic
/// background worker through the shared request queue (+ doorbell) and, unless -W, waits (within -t) until the worker
/// runs: its backend slot shows it attached (the backend writes its pid there when it marks the slot Active). A worker
/// that exits before that, or whose slot is freed or reused first, is a failure (exit 1). Dynamic workers are never
/// restarted. Beyond max_backends the postmaster refuses and nothing is started.
/// </summary>
internal static class SpawnCommand
{
    private static readonly Option<string> Worker = new("--worker")
    {
        Description = "Worker entry: a built-in name or Assembly.dll:Namespace.Type", HelpName = "ENTRY", Required = true,
    };

    private static readonly Option<string> Argument = new("--argument")
    {
        Description = "Argument passed to the worker", HelpName = "TEXT", DefaultValueFactory = _ => "",
    };

    private static readonly Option<string?> Name = new("--name")
    {
        Description = "Name shown in logs and status (default: the built-in's name, or the type's name)", HelpName = "NAME",
    };

    private static readonly TimeSpan Poll = TimeSpan.FromTicks(2500); // 0.25 ms: a worker that exits at once is still seen

    public static Command Create()
    {
        var cmd = new Command("spawn", "Start a dynamic background worker in the running server")
        {
            CliOptions.DataDir, Worker, Argument, Name, CliOptions.Wait, CliOptions.NoWait, CliOptions.Timeout, CliOptions.Json,
        };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            DataDirectoryCheck.Require(dir, ExitCodes.Failure);
            string entry = pr.GetValue(Worker)!;
            string name = pr.GetValue(Name) ?? WorkerEntry.DefaultName(entry);
            string argument = pr.GetValue(Argument) ?? "";
            if (name.Length == 0)
                throw new CliException("invalid value for option \"--name\": the name is empty", ExitCodes.Usage);
            if (BackendSlotArray.Validate(name, entry, argument) is { } invalid)
                throw new CliException(invalid, ExitCodes.Usage);
            if (WorkerEntry.Check(entry, dir) is { } bad)
                throw bad;
            var timeout = CliOptions.TimeoutOf(pr);
            var deadline = DateTime.UtcNow + timeout;
            if (InstanceAccess.AttachRunning(dir) is not var (server, shmem))
                return ExitCodes.Failure;
            using (server)
            using (shmem)
            {
                // Parked pool members are attached already: one handed this work runs at once (it may also finish
                // before we look again).
                var parked = Enumerable.Range(0, shmem.Slots.Count).Select(shmem.Slots.Read)
                    .Where(s => s.State == BackendSlotState.Active && s.Pooled && s.Pid > 0).Select(s => (s.Slot, s.Pid)).ToHashSet();
                var result = Submit(server, shmem, WorkerRequestKind.Spawn, name, entry, argument, "", timeout);
                if (result is not { } r)
                    return ExitCodes.Failure;
                if (!r.Ok)
                {
                    Report.Error($"could not start worker \"{name}\": {r.Error}");
                    return ExitCodes.Failure;
                }
                if (!pr.GetValue(CliOptions.NoWait) && !parked.Contains((r.Slot, r.Pid)) &&
                    WaitUntilRunning(shmem, r, deadline, timeout) is { } failure)
                {
                    Report.Error($"worker \"{name}\" (PID {r.Pid}) {failure}",
                        hint: $"The server log says why (by default \"{StartCommand.DefaultLogPath(dir)}\").");
                    return ExitCodes.Failure;
                }
                if (pr.GetValue(CliOptions.Json))
                    JsonOut.Print(w => { w.WriteStartObject(); w.WriteNumber("pid", r.Pid); w.WriteNumber("slot", r.Slot); w.WriteNumber("generation", r.Generation); w.WriteEndObject(); });
                else
                    Console.WriteLine($"started worker \"{name}\": PID {r.Pid}, slot {r.Slot}");
                return ExitCodes.Ok;
            }
        });
        return cmd;
    }

    /// <summary>Null once the worker is known to have attached and run (the slot's attached generation is the one the
    /// answer named: the backend writes it when it marks itself Active, and freeing the slot keeps it); otherwise what
    /// happened instead, as a clause.</summary>
    private static string? WaitUntilRunning(InstanceShmem shmem, WorkerRequestResult r, DateTime deadline, TimeSpan timeout)
    {
        while (true)
        {
            var slot = shmem.Slots.Read(r.Slot);
            if (slot.AttachedGeneration == r.Generation)
                return null;
            if (slot.Generation != r.Generation)
                return "exited, and its backend slot was reused before it could be seen running";
            if (slot.State == BackendSlotState.Unused || !ProcessControl.IsAlive(r.Pid))
                return shmem.Slots.Read(r.Slot).AttachedGeneration == r.Generation ? null : "exited before it started running";
            if (DateTime.UtcNow >= deadline)
                return $"did not start running within {timeout.TotalSeconds:0} s; it may still be starting";
            PreciseSleep.For(Poll);
        }
    }

    public static readonly TimeSpan AnswerTimeoutFloor = TimeSpan.FromSeconds(10);

    /// <summary>Posts a request to the proven server, wakes it and waits for its answer; null (after printing why) on
    /// failure.</summary>
    public static WorkerRequestResult? Submit(RunningServer server, InstanceShmem shmem, WorkerRequestKind kind, string name,
        string entry, string argument, string target, TimeSpan timeout)
    {
        var index = shmem.Requests.Post(kind, name, entry, argument, target, server.Pid);
        if (index is not int i)
        {
            Report.Error("the postmaster's request queue is full; try again");
            return null;
        }
        // -t bounds how long a command waits for the backend; the postmaster's answer itself gets at least
        // AnswerTimeoutFloor (a postmaster that has not answered by then is stuck).
        var answerTimeout = timeout > AnswerTimeoutFloor ? timeout : AnswerTimeoutFloor;
        var result = shmem.Requests.WaitOrWithdraw(i, answerTimeout);
        if (result is null)
            Report.Error($"the postmaster (PID {server.Pid}) did not answer within {answerTimeout.TotalSeconds:0} s");
        return result;
    }
}
