using System.Diagnostics;
using System.Runtime.CompilerServices;
using Postmaster.Workers;

namespace Postmaster.TestChild.Workers;

/// <summary>
/// Bench-only worker (bench suite "backends"): the first thing its Run does is read Stopwatch.GetTimestamp()
/// (CLOCK_MONOTONIC in nanoseconds, comparable across processes); it then writes that value to DIR/PID (via a
/// temporary name and a rename, so a reader never sees half a file). Argument "exit:DIR" returns 0 right after
/// (the worker's work is done); "stay:DIR" then waits for SIGTERM like the built-in idle worker and returns 1.
/// Run is kept tiny so that JIT-compiling it costs as little as possible before the timestamp is taken.
/// </summary>
public sealed class StampWorker : IBackgroundWorker
{
    public int Run(WorkerContext context) => Finish(context, Stopwatch.GetTimestamp());

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int Finish(WorkerContext context, long started)
    {
        string argument = context.Argument;
        int colon = argument.IndexOf(':');
        if (colon <= 0)
            throw new ArgumentException($"stamp worker: argument \"{argument}\" is not \"exit:DIR\" or \"stay:DIR\"");
        string mode = argument[..colon], dir = argument[(colon + 1)..];
        string path = Path.Combine(dir, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        File.WriteAllText(path + ".tmp", started.ToString(System.Globalization.CultureInfo.InvariantCulture));
        File.Move(path + ".tmp", path);
        if (mode == "exit")
            return 0;
        context.Stopping.WaitHandle.WaitOne();
        return 1;
    }
}
