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

    private readonly ServerLog _log;
    private readonly SafeFd _read;
    private SafeFd? _write;
    private readonly Thread _thread;
    private readonly LogPipeReader _reader = new();
    private volatile bool _draining;
    private bool _reportedFailure;

    public LogCollector(ServerLog log)
    {
        _log = log;
        (_read, _write) = ProcessSpawner.CreatePipe();
        _thread = new Thread(Run) { Name = "log collector", IsBackground = true };
        _thread.Start();
    }

    /// <summary>The write end, for the backends' stdout and stderr.</summary>
    public int WriteFd => _write?.Fd ?? throw new ObjectDisposedException(nameof(LogCollector));

    private void Run()
    {
        var buffer = new byte[64 * 1024];
        long drainUntil = long.MaxValue;
        while (true)
        {
            int n;
            try
            {
                if (_draining && drainUntil == long.MaxValue)
                    drainUntil = Environment.TickCount64 + (long)DrainLimit.TotalMilliseconds; // from the stop, however busy the pipe
                if (Environment.TickCount64 >= drainUntil)
                    break; // a leftover writer (a worker's own child) keeps the pipe open: stop waiting for it
                if (!ProcessSpawner.WaitReadable(_read.Fd, 100))
                    continue;
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
        }
        foreach (var item in _reader.Flush())
            Emit(item);
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
        _thread.Join();
        _read.Dispose();
    }
}
