using Postmaster.Workers;

namespace Postmaster.TestChild.Workers;

/// <summary>A user worker loaded from an assembly path (worker.NAME.entry = '.../TestChild.dll:Postmaster.TestChild.Workers.MarkerWorker'):
/// writes "started SLOT" to the file named by its argument, then waits to be stopped and appends "stopped".</summary>
public sealed class MarkerWorker : IBackgroundWorker
{
    public int Run(WorkerContext context)
    {
        File.AppendAllText(context.Argument, $"started {context.Slot}\n");
        context.Exit.OnProcExit("marker", () => File.AppendAllText(context.Argument, "exit callback\n"));
        context.Stopping.WaitHandle.WaitOne();
        File.AppendAllText(context.Argument, "stopped\n");
        return 1;
    }
}

/// <summary>Not a worker: for the "does not implement" error.</summary>
public sealed class NotAWorker
{
}

/// <summary>Ignores every stop request (for the postmaster-death grace period): sleeps until the process is ended.</summary>
public sealed class StubbornWorker : IBackgroundWorker
{
    public int Run(WorkerContext context)
    {
        Thread.Sleep(Timeout.Infinite);
        return 0;
    }
}
