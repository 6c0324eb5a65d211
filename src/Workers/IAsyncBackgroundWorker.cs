namespace Postmaster.Workers;

/// <summary>
/// An async worker: the same contract as <see cref="IBackgroundWorker"/> (configured the same way, the type needs a
/// public parameterless constructor and implements exactly one of the two interfaces), with a task instead of a
/// blocking call. The backend starts <see cref="RunAsync"/> on its main thread and blocks that thread until the task
/// completes; continuations after an <c>await</c> run on the thread pool (there is no synchronisation context).
/// <para>The task's result is the exit code: 0 done (never restarted), 1 restarted per the worker's restart policy.
/// A task that faults (also after an <c>await</c>) is logged as FATAL with its stack trace and exits 1; one that is
/// cancelled through the stopping token after a stop request is the ordinary "terminating background
/// worker ... due to administrator command" and exits 1.</para>
/// </summary>
public interface IAsyncBackgroundWorker
{
    /// <summary>The worker's work, from start to exit. Runs once per backend process.</summary>
    /// <param name="context">What the backend gives the worker: identity, stop request, shared memory, locks, log.</param>
    /// <param name="stopping">The same token as <see cref="WorkerContext.Stopping"/>: fired by SIGTERM (smart or fast
    /// shutdown, terminate) and by the postmaster's death. Pass it to every wait.</param>
    /// <returns>A task whose result is the process's exit code: 0 done, 1 restart per policy.</returns>
    Task<int> RunAsync(WorkerContext context, CancellationToken stopping);
}
