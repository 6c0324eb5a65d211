using System.CommandLine;
using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Os;

namespace Postmaster.Cli;

/// <summary><c>postmaster terminate PID|NAME</c>: the postmaster sends SIGTERM to that backend (or every instance of a
/// static worker NAME) and does not restart it. Unless -W, waits (within -t) until EVERY backend it signalled has
/// exited; one still running then is a failure (exit 1). The answer carries the first pid signalled and, in its
/// generation field, how many; the pids are read from the backend slots before the request is posted.</summary>
public static class TerminateCommand
{
    private static readonly Argument<string> Target = CreateTarget();

    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(1);

    private static Argument<string> CreateTarget()
    {
        var a = new Argument<string>("target") { Description = "Backend PID, or worker name", HelpName = "PID|NAME" };
        a.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && r.Tokens[0].Value is { } v && (v.StartsWith('-') || v.Length == 0))
                r.AddError(v.Length == 0 ? "the backend to terminate is empty" : $"unrecognized option \"{v}\"");
        });
        return a;
    }

    public static Command Create()
    {
        var cmd = new Command("terminate", "Stop one backend with SIGTERM (it is not restarted)")
        {
            CliOptions.DataDir, Target, CliOptions.Wait, CliOptions.NoWait, CliOptions.Timeout,
        };
        cmd.SetAction(pr =>
        {
            var dir = CliOptions.ResolveDataDir(pr);
            DataDirectoryCheck.Require(dir, ExitCodes.Failure);
            string target = pr.GetValue(Target)!;
            var timeout = CliOptions.TimeoutOf(pr);
            var deadline = DateTime.UtcNow + timeout;
            if (InstanceAccess.AttachRunning(dir) is not var (server, shmem))
                return ExitCodes.Failure;
            using (server)
            using (shmem)
            {
                var before = Enumerable.Range(0, shmem.Slots.Count).Select(shmem.Slots.Read)
                    .Where(s => s.State != BackendSlotState.Unused && !s.Pooled && s.Pid > 0).ToList();
                var result = SpawnCommand.Submit(server, shmem, WorkerRequestKind.Terminate, "", "", "", target, timeout);
                if (result is not { } r)
                    return ExitCodes.Failure;
                if (!r.Ok)
                {
                    Report.Error($"could not terminate \"{target}\": {r.Error}");
                    return ExitCodes.Failure;
                }
                if (r.Pid == 0)
                {
                    // A configured worker that was not running (backing off or waiting): it will not be started.
                    Console.WriteLine($"stopped worker \"{target}\" (it was not running)");
                    return ExitCodes.Ok;
                }
                // r.Generation: for terminate, the number of backends signalled (see PostmasterLoop.ServeRequests).
                int count = (int)Math.Max(1, r.Generation);
                var pids = Victims(target, before, r.Pid, count);
                string what = count > 1 ? $"{count} backends (PID {string.Join(", ", pids)})" : $"backend PID {r.Pid}";
                if (pr.GetValue(CliOptions.NoWait))
                {
                    Console.WriteLine($"terminating {what}");
                    return ExitCodes.Ok;
                }
                // Gone means exited AND given back by the server (its slot no longer names the pid): a process that has
                // exited is a zombie until the postmaster reaps it, and `status` right after this command must not
                // list it any more.
                bool Held(int pid) => Enumerable.Range(0, shmem.Slots.Count).Select(shmem.Slots.Read)
                    .Any(s => s.State != BackendSlotState.Unused && s.Pid == pid);
                List<int> alive;
                while ((alive = pids.Where(p => ProcessControl.IsAlive(p) || Held(p)).ToList()).Count > 0 && DateTime.UtcNow < deadline)
                    Thread.Sleep(Poll);
                if (alive.Count > 0)
                {
                    Report.Error($"{(alive.Count == 1 ? "backend" : "backends")} PID {string.Join(", ", alive)} still running " +
                                 $"{timeout.TotalSeconds:0} s after SIGTERM",
                        hint: "It was asked to stop and will not be restarted; it may still be finishing its work.");
                    return ExitCodes.Failure;
                }
                Console.WriteLine($"terminated {what}");
                return ExitCodes.Ok;
            }
        });
        return cmd;
    }

    /// <summary>The pids the server signalled: the target pid; or, for a name, the backends that had that name (or,
    /// for a static worker with count &gt; 1, NAME.N) when the request was posted. Always includes the first pid of the
    /// answer.</summary>
    private static List<int> Victims(string target, List<BackendSlotInfo> before, int first, int count)
    {
        if (int.TryParse(target, out _))
            return new List<int> { first };
        var exact = before.Where(s => s.Name == target).Select(s => s.Pid).ToList();
        var instances = before.Where(s => s.Name.StartsWith(target + ".", StringComparison.Ordinal) &&
                                          s.Name[(target.Length + 1)..].All(char.IsAsciiDigit)).Select(s => s.Pid).ToList();
        var chosen = exact.Count == count && exact.Contains(first) ? exact
            : exact.Concat(instances).Distinct().ToList();
        if (!chosen.Contains(first))
            chosen.Insert(0, first);
        return chosen;
    }
}
