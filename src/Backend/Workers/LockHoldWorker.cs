using Postmaster.Workers;

namespace Postmaster.Backend.Workers;

/// <summary>"lock-hold": takes a named lock exclusively, logs "is holding lock", and keeps it until stopped. Used by
/// the crash tests (a backend killed while holding a lock). The argument is <c>[thread:|exit:]NAME</c> (default name
/// "test lock"): <c>thread:</c> takes and holds the lock on a second thread while the main thread waits (a
/// multi-threaded worker); <c>exit:</c> takes it and returns 0 without releasing it (the exit path must release it
/// and say so).</summary>
internal sealed class LockHoldWorker : IBackgroundWorker
{
    public int Run(WorkerContext context)
    {
        string arg = context.Argument;
        string mode = arg.StartsWith("thread:", StringComparison.Ordinal) ? "thread"
            : arg.StartsWith("exit:", StringComparison.Ordinal) ? "exit" : "";
        string name = mode.Length > 0 ? arg[(mode.Length + 1)..] : arg;
        if (name.Length == 0)
            name = "test lock";
        var handle = context.NamedLock(name);
        switch (mode)
        {
            case "exit":
                context.Locks.Acquire(handle, LWLockMode.Exclusive);
                context.Log($"background worker \"{context.Name}\" is holding lock \"{name}\" and exits");
                return 0;
            case "thread":
                var holder = new Thread(() => Hold(context, handle, name)) { Name = "lock holder" };
                holder.Start();
                holder.Join();
                return 1;
            default:
                Hold(context, handle, name);
                return 1;
        }
    }

    private static void Hold(WorkerContext context, LWLockHandle handle, string name)
    {
        using var held = context.Locks.Hold(handle, LWLockMode.Exclusive);
        context.Log($"background worker \"{context.Name}\" is holding lock \"{name}\"" +
                    (Thread.CurrentThread.Name is { } thread ? $" on thread \"{thread}\"" : ""));
        context.WaitUntilStopping(Timeout.InfiniteTimeSpan);
    }
}
