using System.Globalization;
using System.Text;
using Postmaster.Shmem.Os;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting;

namespace Postmaster.Logging;

/// <summary>
/// The daemon's JSON log file sink (replacing Serilog's file sink, which creates files with the umask's mode and
/// without O_APPEND). Files are <c>DIR/PREFIXyyyyMMdd.json</c>, then <c>PREFIXyyyyMMdd_001.json</c> and so on: a
/// file is closed and the next one started when it would pass <see cref="LogRotation.SizeBytes"/>, when it has been
/// open for <see cref="LogRotation.Age"/>, and when the day changes (PostgreSQL's log_rotation_size and
/// log_rotation_age; 0 turns either off); only the newest <see cref="LogRotation.RetainedFiles"/> files (by
/// modification time) are kept. Each file is created mode 0600 and opened with O_APPEND (<see cref="AppendOnlyFile"/>),
/// and each event is one write(2), or each batch of events (<see cref="IBatchingSink"/>: the collector's records of
/// one pipe read), so lines of concurrent writers never overwrite or split each other. The directory is created 0700. A failure to write is reported once on stderr and the event dropped: logging must never stop the
/// supervisor.
/// </summary>
public sealed class AppendFileSink : ILogEventSink, IBatchingSink, IDisposable
{
    /// <summary>Held bytes are written when they pass this, batch or not.</summary>
    private const int FlushBytes = 64 * 1024;

    private readonly object _gate = new();
    private readonly ITextFormatter _formatter;
    private readonly string _directory;
    private readonly string _prefix;
    private AppendOnlyFile? _file;
    private string? _day;
    private int _sequence;
    private DateTime _openedAt;
    private bool _reportedFailure;
    private LogRotation _rotation;
    private long _fileLength; // the open file's size, counting what is held
    private readonly MemoryStream _pending = new();
    private int _batches;

    public AppendFileSink(ITextFormatter formatter, string directory, string prefix, LogRotation? rotation = null)
    {
        _formatter = formatter;
        _directory = directory;
        _prefix = prefix;
        _rotation = rotation ?? LogRotation.Default;
        AppendOnlyFile.CreateDirectory(directory);
    }

    /// <summary>The rotation rules; a reload changes them (the open file is judged by the new ones at the next event).</summary>
    public LogRotation Rotation
    {
        get => Volatile.Read(ref _rotation);
        set => Volatile.Write(ref _rotation, value ?? throw new ArgumentNullException(nameof(value)));
    }

    public void Emit(LogEvent logEvent)
    {
        var text = new StringWriter(CultureInfo.InvariantCulture);
        _formatter.Format(logEvent, text);
        var bytes = Encoding.UTF8.GetBytes(text.ToString());
        lock (_gate)
        {
            try
            {
                Current(logEvent.Timestamp.UtcDateTime, bytes.Length); // may write what is held to the file it ends
                _pending.Write(bytes);
                _fileLength += bytes.Length;
                if (_batches == 0 || _pending.Length >= FlushBytes)
                    WritePending();
            }
            catch (Exception e) when (e is Shmem.Errors.ShmemException or IOException or UnauthorizedAccessException)
            {
                _pending.SetLength(0);
                Report(e);
            }
        }
    }

    void IBatchingSink.BeginBatch()
    {
        lock (_gate)
            _batches++;
    }

    void IBatchingSink.EndBatch()
    {
        lock (_gate)
        {
            if (_batches > 0)
                _batches--;
            if (_batches > 0)
                return;
            try
            {
                WritePending();
            }
            catch (Exception e) when (e is Shmem.Errors.ShmemException or IOException or UnauthorizedAccessException)
            {
                _pending.SetLength(0);
                Report(e);
            }
        }
    }

    /// <summary>Writes the held events to the open file with one write(2). Caller holds <see cref="_gate"/>.</summary>
    private void WritePending()
    {
        if (_pending.Length == 0)
            return;
        try
        {
            _file?.Write(_pending.GetBuffer().AsSpan(0, (int)_pending.Length));
        }
        finally
        {
            _pending.SetLength(0);
            if (_pending.Capacity > FlushBytes * 4)
                _pending.Capacity = FlushBytes;
        }
    }

    private void Report(Exception e)
    {
        if (!_reportedFailure)
        {
            _reportedFailure = true;
            Console.Error.WriteLine($"could not write to the JSON log in \"{_directory}\": {e.Message}");
        }
    }

    /// <summary>The file for an event of <paramref name="bytes"/> bytes at <paramref name="utc"/>: the open one, or
    /// the next one when the day changed or the size limit would be passed.</summary>
    private AppendOnlyFile Current(DateTime utc, int bytes)
    {
        var rules = Rotation;
        string day = utc.ToString("yyyyMMdd", CultureInfo.InvariantCulture);
        bool aged = _file is not null && rules.Age > TimeSpan.Zero && utc - _openedAt >= rules.Age;
        if (_file is not null && day == _day && !aged && Fits(_fileLength, bytes, rules))
            return _file;
        bool reopen = _file is null && day == _day; // after a reopen (logrotate): the same rules, a fresh look
        WritePending(); // what is held belongs to the file being closed
        _file?.Dispose();
        _file = null;
        if (day != _day)
        {
            _day = day;
            _sequence = 0;
        }
        else if (!reopen)
            _sequence++; // rotated by size or age: the next file of the day
        while (true)
        {
            string path = PathFor(day, _sequence);
            var file = AppendOnlyFile.Open(path);
            long length = file.Length;
            if (length == 0 || Fits(length, bytes, rules) && !aged)
            {
                _file = file;
                _fileLength = length;
                break;
            }
            file.Dispose();
            _sequence++;
        }
        _openedAt = utc;
        RemoveOldFiles(rules.RetainedFiles);
        return _file;
    }

    private static bool Fits(long length, int bytes, LogRotation rules) =>
        rules.SizeBytes <= 0 || length + bytes <= rules.SizeBytes;

    private string PathFor(string day, int sequence) => Path.Combine(_directory,
        sequence == 0 ? $"{_prefix}{day}.json" : $"{_prefix}{day}_{sequence:000}.json");

    /// <summary>Keeps the newest <paramref name="retained"/> files, by modification time (then name): a file started
    /// after a reopen can sort before an older one by name.</summary>
    private void RemoveOldFiles(int retained)
    {
        try
        {
            var old = new DirectoryInfo(_directory).GetFiles(_prefix + "*.json")
                .OrderByDescending(f => f.LastWriteTimeUtc).ThenByDescending(f => f.Name, StringComparer.Ordinal)
                .Skip(Math.Max(retained, 1));
            foreach (var f in old)
                f.Delete();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // retention is best effort; the next roll tries again
        }
    }

    /// <summary>Closes the current file; the next event opens the file for its day and size again (after a rotation
    /// moved the old one away, a new one).</summary>
    public void Reopen()
    {
        lock (_gate)
        {
            try
            {
                WritePending();
            }
            catch (Exception e) when (e is Shmem.Errors.ShmemException or IOException or UnauthorizedAccessException)
            {
                Report(e);
            }
            _file?.Dispose();
            _file = null;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            try
            {
                WritePending();
            }
            catch (Exception e) when (e is Shmem.Errors.ShmemException or IOException or UnauthorizedAccessException)
            {
                Report(e);
            }
            _file?.Dispose();
            _file = null;
        }
    }
}

/// <summary>When <see cref="AppendFileSink"/> starts a new file, and how many it keeps (log_rotation_size,
/// log_rotation_age, log_retained_files).</summary>
/// <param name="SizeBytes">A file is not grown past this; 0: no size limit.</param>
/// <param name="Age">A file is closed after this long; zero: only the day's change starts a new one.</param>
/// <param name="RetainedFiles">The newest files kept (at least 1).</param>
public sealed record LogRotation(long SizeBytes, TimeSpan Age, int RetainedFiles)
{
    public static readonly LogRotation Default = new(64L << 20, TimeSpan.FromDays(1), 30);
}
