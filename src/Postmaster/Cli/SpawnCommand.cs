using System.CommandLine;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Os;

namespace Postmaster.Cli;

/// <summary>
/// <c>postmaster spawn --worker ENTRY [--argument TEXT] [--name NAME]</c>: asks the running postmaster for a dynamic
/// background worker through the shared request queue (+ SIGUSR1) and prints its pid and slot. Dynamic workers are
/// never restarted. Beyond max_backends the postmaster refuses and nothing is started.
/// </summary>
public static class SpawnCommand
{
    private static readonly Option<string> Worker = new("--worker") { Description = "Worker entry: a built-in name or Assembly.dll:Namespace.Type", Required = true };
    private static readonly Option<string> Argument = new("--argument") { Description = "Argument passed to the worker", DefaultValueFactory = _ => "" };
    private static readonly Option<string?> Name = new("--name") { Description = "Name shown in logs and status (default: the entry)" };

    public static Command Create()
    {
        var cmd = new Command("spawn", "Start a dynamic background worker in the running server")
        {
            CliOptions.DataDir, Worker, Argument, Name, CliOptions.Timeout, CliOptions.Json,
        };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            if (dir is null)
                return ExitCodes.Failure;
            string entry = pr.GetValue(Worker)!;
            string name = pr.GetValue(Name) ?? entry;
            string argument = pr.GetValue(Argument) ?? "";
            if (BackendSlotArray.Validate(name, entry, argument) is { } invalid)
            {
                Report.Error(invalid);
                return ExitCodes.Failure;
            }
            var result = Submit(dir, WorkerRequestKind.Spawn, name, entry, argument, "", CliOptions.TimeoutOf(pr));
            if (result is not { } r)
                return ExitCodes.Failure;
            if (!r.Ok)
            {
                Report.Error($"could not start worker \"{name}\": {r.Error}");
                return ExitCodes.Failure;
            }
            if (pr.GetValue(CliOptions.Json))
                JsonOut.Print(w => { w.WriteStartObject(); w.WriteNumber("pid", r.Pid); w.WriteNumber("slot", r.Slot); w.WriteNumber("generation", r.Generation); w.WriteEndObject(); });
            else
                Console.WriteLine($"started worker \"{name}\": PID {r.Pid}, slot {r.Slot}");
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>Posts a request, signals the postmaster and waits for its answer; null (after printing why) on failure.</summary>
    public static WorkerRequestResult? Submit(string dir, WorkerRequestKind kind, string name, string entry, string argument,
        string target, TimeSpan timeout)
    {
        if (InstanceAccess.AttachRunning(dir) is not var (server, shmem))
            return null;
        using (shmem)
        {
            var index = shmem.Requests.Post(kind, name, entry, argument, target, server.Pid);
            if (index is not int i)
            {
                Report.Error("the postmaster's request queue is full; try again");
                return null;
            }
            var result = shmem.Requests.WaitOrWithdraw(i, timeout);
            if (result is null)
                Report.Error($"the postmaster (PID {server.Pid}) did not answer within {timeout.TotalSeconds:0} s");
            return result;
        }
    }
}
