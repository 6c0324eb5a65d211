namespace Postmaster.Workers;

/// <summary>
/// PostgreSQL's three exit-callback lists (ipc.c): before-shmem-exit callbacks run first (the system is still
/// intact), then every dynamic shared memory segment is detached, then the on-shmem-exit callbacks (lock release,
/// slot release), then the on-proc-exit callbacks. Each list runs last-in-first-out, and each callback is removed
/// before it is called, so one that fails is not retried and the rest still run; a failure is logged as a WARNING
/// with its stack trace. Registration is thread-safe; registering once the exit path has begun throws
/// <see cref="InvalidOperationException"/>. A process that ends by a signal (SIGQUIT, SIGKILL) runs none of them.
/// </summary>
public sealed class ExitCallbacks
{
    private readonly object _gate = new();
    private readonly List<(string Name, Action Action)> _beforeShmem = new();
    private readonly List<(string Name, Action Action)> _onShmem = new();
    private readonly List<(string Name, Action Action)> _onProc = new();
    private int _running;

    /// <summary>One per backend process, made by the backend host.</summary>
    internal ExitCallbacks()
    {
    }

    /// <summary>Registers <paramref name="action"/> to run first on the exit path, while shared memory, dynamic shared
    /// memory and locks are all still there (PostgreSQL's before_shmem_exit).</summary>
    /// <param name="name">What the callback does, for the log line if it fails.</param>
    /// <param name="action">The callback.</param>
    public void BeforeShmemExit(string name, Action action) => Add(_beforeShmem, name, action);

    /// <summary>Registers <paramref name="action"/> to run after every dynamic shared memory segment has been detached,
    /// next to the backend's own lock and slot release (PostgreSQL's on_shmem_exit).</summary>
    /// <param name="name">What the callback does, for the log line if it fails.</param>
    /// <param name="action">The callback.</param>
    public void OnShmemExit(string name, Action action) => Add(_onShmem, name, action);

    /// <summary>Registers <paramref name="action"/> to run last, when nothing shared is left to the process
    /// (PostgreSQL's on_proc_exit).</summary>
    /// <param name="name">What the callback does, for the log line if it fails.</param>
    /// <param name="action">The callback.</param>
    public void OnProcExit(string name, Action action) => Add(_onProc, name, action);

    /// <summary>True once <see cref="RunAll"/> has started (exit is in progress).</summary>
    public bool Exiting => Volatile.Read(ref _running) != 0;

    /// <summary>Runs everything in order, once (the backend's exit path). <paramref name="detachDsm"/> runs between the
    /// first two lists. Failures are reported to <paramref name="onError"/> and do not stop the remaining callbacks.</summary>
    internal void RunAll(Action detachDsm, Action<string, Exception> onError)
    {
        if (Interlocked.Exchange(ref _running, 1) != 0)
            return;
        Drain(_beforeShmem, onError);
        try
        {
            detachDsm();
        }
        catch (Exception e)
        {
            onError("dynamic shared memory detach", e);
        }
        Drain(_onShmem, onError);
        Drain(_onProc, onError);
    }

    private void Add(List<(string, Action)> list, string name, Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        lock (_gate)
        {
            if (Exiting)
                throw new InvalidOperationException($"cannot register exit callback \"{name}\": the process is already exiting");
            list.Add((name, action));
        }
    }

    private void Drain(List<(string Name, Action Action)> list, Action<string, Exception> onError)
    {
        while (true)
        {
            (string Name, Action Action) cb;
            lock (_gate)
            {
                if (list.Count == 0)
                    return;
                cb = list[^1];
                list.RemoveAt(list.Count - 1); // removed before the call: a failing callback is not re-run
            }
            try
            {
                cb.Action();
            }
            catch (Exception e)
            {
                onError(cb.Name, e);
            }
        }
    }
}
