using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Text;

namespace Postmaster.Logging;

/// <summary>
/// The instance's logging collector (PostgreSQL's syslogger, as a thread of the postmaster): one pipe that is every
/// backend's stdout and stderr; this thread reads it, reassembles each backend's records (<see cref="LogPipeReader"/>)
/// and writes them through the postmaster's own <see cref="ServerLog"/>, so every destination (stderr or the log
/// file, the JSON files) gets one stream, in arrival order, whole lines only. The supervisor loop never touches the
/// pipe. What a backend wrote before it crashed is in the pipe and is kept. At shutdown <see cref="Dispose"/> closes
/// the postmaster's write end once no backend is left and drains the pipe until every other writer has closed it (a
/// leftover grandchild holding it is not waited for beyond <see cref="DrainLimit"/>).
/// </summary>
internal sealed class LogCollector : IDisposable
{
    public static readonly TimeSpan DrainLimit = TimeSpan.FromSeconds(1);

    /// <summary>After a read, how long the collector lets more arrive before it reads again: under a storm one wake-up
    /// a millisecond instead of one per write (each costs a context switch on a 2-core machine), at most this much later
    /// in the log. <see cref="Sync"/> does not wait for it.</summary>
    public const int CoalesceMs = 1;

    /// <summary>The pipe's capacity asked for (F_SETPIPE_SZ; the default limit for a user is 1 MiB): room for what
    /// 20 backends write in a coalescing pause and more, so a writer does not block on a collector that is pausing.</summary>
    private const int PipeBytes = 1 << 20;

    private readonly ServerLog _log;
    private readonly SafeFd _read;
    private SafeFd? _write;
    private readonly Thread _thread;
    private readonly LogPipeReader _reader = new();
    private readonly WakeEvent _wake = new();
    private readonly object _syncGate = new();
    private long _syncRequested, _syncDone;
    private volatile bool _draining;
    private bool _reportedFailure;

    public LogCollector(ServerLog log)
    {
        _log = log;
        (_read, _write) = ProcessSpawner.CreatePipe();
        ProcessSpawner.TryResizePipe(_write.Fd, PipeBytes);
        _thread = new Thread(Run) { Name = "log collector", IsBackground = true };
        _thread.Start();
    }

    /// <summary>The write end, for the backends' stdout and stderr.</summary>
    public int WriteFd => _write?.Fd ?? throw new ObjectDisposedException(nameof(LogCollector));

    /// <summary>Returns once everything in the pipe now has been written to the log (or after <paramref name="limit"/>):
    /// the supervisor calls it before it reports a backend's exit, so a backend's last words always come before the
    /// line about its death.</summary>
    public void Sync(TimeSpan limit)
    {
        long ticket;
        lock (_syncGate)
            ticket = ++_syncRequested;
        _wake.Signal();
        long until = Environment.TickCount64 + (long)limit.TotalMilliseconds;
        lock (_syncGate)
        {
            while (_syncDone < ticket && _thread.IsAlive)
            {
                long left = until - Environment.TickCount64;
                if (left <= 0)
                    return;
                Monitor.Wait(_syncGate, (int)Math.Min(left, 100));
            }
        }
    }

    private void Run()
    {
        var buffer = new byte[64 * 1024];
        long drainUntil = long.MaxValue;
        var entries = new PollEntry[2];
        bool pause = false;
        try
        {
            while (true)
            {
                int n;
                try
                {
                    if (_draining && drainUntil == long.MaxValue)
                        drainUntil = Environment.TickCount64 + (long)DrainLimit.TotalMilliseconds; // from the stop, however busy the pipe
                    if (Environment.TickCount64 >= drainUntil)
                        break; // a leftover writer (a worker's own child) keeps the pipe open: stop waiting for it
                    long requested = Volatile.Read(ref _syncRequested);
                    bool syncing = requested != Volatile.Read(ref _syncDone);
                    if (pause && !syncing && !_draining)
                    {
                        // Let more arrive (a sync request ends the pause at once).
                        entries[0] = new PollEntry(_wake.Fd);
                        Poller.Wait(entries.AsSpan(0, 1), CoalesceMs);
                    }
                    pause = false;
                    entries[0] = new PollEntry(_read.Fd);
                    entries[1] = new PollEntry(_wake.Fd);
                    Poller.Wait(entries, syncing ? 0 : 100);
                    if (entries[1].IsReadable)
                        _wake.Drain();
                    if (!entries[0].IsReadable)
                    {
                        if (syncing)
                            CompleteSync(requested); // nothing (more) in the pipe
                        continue;
                    }
                    n = ProcessSpawner.Read(_read.Fd, buffer);
                }
                catch (OsCallException e)
                {
                    _log.Warning($"log collector: {e.Message}");
                    break;
                }
                if (n == 0)
                    break; // every writer closed it
                using (_log.Batch()) // the records of one read cost one write(2) per destination
                {
                    foreach (var item in _reader.Feed(buffer.AsSpan(0, n)))
                        Emit(item);
                }
                pause = n < buffer.Length; // a full read: more is waiting, read on at once
            }
            foreach (var item in _reader.Flush())
                Emit(item);
        }
        finally
        {
            CompleteSync(long.MaxValue); // nobody waits for a collector that has stopped
        }
    }

    private void CompleteSync(long requested)
    {
        lock (_syncGate)
        {
            _syncDone = Math.Min(requested, _syncRequested);
            Monitor.PulseAll(_syncGate);
        }
    }

    private void Emit(LogPipeItem item)
    {
        try
        {
            if (item.Record is { } record)
                _log.WriteRecord(item.Pid, record);
            else if (item.Pid != 0)
                _log.Warning(item.Text ?? "");
            else
                _log.WriteRaw(item.Text ?? "");
        }
        catch (Exception e)
        {
            // A destination failed (the sink reports that once), or a bug met an input it did not expect: either way
            // the collector keeps reading, so that no backend ever blocks on a full pipe.
            if (!_reportedFailure)
            {
                _reportedFailure = true;
                Console.Error.WriteLine($"log collector: could not write a log item: {e.GetType().Name}: {e.Message}");
            }
        }
    }

    /// <summary>Closes the write end, drains what the backends wrote, and ends the thread. Call once no backend is left.</summary>
    public void Dispose()
    {
        _draining = true;
        _write?.Dispose();
        _write = null;
        _wake.Signal();
        _thread.Join();
        _read.Dispose();
        _wake.Dispose();
    }
}
