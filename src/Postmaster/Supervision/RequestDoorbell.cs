using System.Collections.Concurrent;
using Postmaster.Shmem.Backends;

namespace Postmaster.Supervision;

/// <summary>
/// Wakes the supervisor loop when a requester rings the worker request queue's doorbell (a futex in the main
/// segment): about 0.7 ms sooner than SIGUSR1, which the runtime delivers through a thread-pool callback.
/// Overview: one background thread sleeps on the doorbell and posts <see cref="PmEvent.PmSignal"/>. The doorbell
/// lives in shared memory that a crash reinitialisation or the shutdown unmaps, so the loop calls <see cref="Stop"/>
/// (which wakes and joins the thread) before any unmap, and <see cref="Start"/> again on the new segment: the thread
/// never touches memory that is gone.
/// </summary>
internal sealed class RequestDoorbell
{
    /// <summary>The thread re-checks its stop flag at least this often (a backstop; Stop rings the bell).</summary>
    public static readonly TimeSpan Recheck = TimeSpan.FromSeconds(1);

    private readonly BlockingCollection<PmEvent> _queue;
    private Thread? _thread;
    private WorkerRequestQueue? _requests;
    private volatile bool _stop;

    public RequestDoorbell(BlockingCollection<PmEvent> queue) => _queue = queue;

    public void Start(WorkerRequestQueue requests)
    {
        if (_thread is not null)
            throw new InvalidOperationException("internal error: the request doorbell is already running");
        _requests = requests;
        _stop = false;
        requests.SetListening(true);
        _thread = new Thread(Listen) { IsBackground = true, Name = "request doorbell" };
        _thread.Start();
    }

    /// <summary>Stops and joins the thread; afterwards it touches no shared memory. Idempotent.</summary>
    public void Stop()
    {
        if (_thread is null)
            return;
        _stop = true;
        _requests!.SetListening(false); // requesters fall back to SIGUSR1 from now on
        _requests.Ring(); // wakes the thread if it sleeps on the word
        _thread.Join();
        _thread = null;
        _requests = null;
    }

    private void Listen()
    {
        var requests = _requests!;
        int seen = requests.Doorbell;
        while (!_stop)
        {
            int now = requests.WaitForDoorbell(seen, Recheck);
            if (_stop)
                break;
            if (now != seen)
            {
                seen = now;
                _queue.TryAdd(new PmEvent.PmSignal());
            }
        }
    }
}
