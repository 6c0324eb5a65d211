using Postmaster.Workers;

namespace Postmaster.Backend.Workers;

/// <summary>"lock-hold": takes the named lock given as argument (default "test lock") exclusively, logs
/// "holding lock", and keeps it until stopped. Used by the crash tests: a backend killed while holding a lock.</summary>
internal sealed class LockHoldWorker : IBackgroundWorker
{
    public int Run(WorkerContext context)
    {
        string name = context.Argument.Length > 0 ? context.Argument : "test lock";
        var handle = context.NamedLock(name);
        using var held = context.Locks.Hold(handle, LWLockMode.Exclusive);
        context.Log($"background worker \"{context.Name}\" is holding lock \"{name}\"");
        context.WaitUntilStopping(Timeout.InfiniteTimeSpan);
        return 1;
    }
}
