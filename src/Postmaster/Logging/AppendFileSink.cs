using System.Globalization;
using System.Text;
using Postmaster.Shmem.Os;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting;

namespace Postmaster.Logging;

/// <summary>
/// The daemon's JSON log file sink (replacing Serilog's file sink, which creates files with the umask's mode and
/// without O_APPEND). Files are <c>DIR/PREFIXyyyyMMdd.json</c>, then <c>PREFIXyyyyMMdd_001.json</c> and so on once
/// one reaches <see cref="MaxFileBytes"/>; a new day starts a new file; only the newest <see cref="RetainedFiles"/>
/// are kept. Each file is created mode 0600 and opened with O_APPEND (<see cref="AppendOnlyFile"/>), and each event
/// is one write(2), so lines of concurrent writers never overwrite or split each other. The directory is created 0700.
/// A failure to write is reported once on stderr and the event dropped: logging must never stop the supervisor.
/// </summary>
public sealed class AppendFileSink : ILogEventSink, IDisposable
{
    public const long MaxFileBytes = 64L << 20;
    public const int RetainedFiles = 30;

    private readonly object _gate = new();
    private readonly ITextFormatter _formatter;
    private readonly string _directory;
    private readonly string _prefix;
    private AppendOnlyFile? _file;
    private string? _day;
    private int _sequence;
    private bool _reportedFailure;

    public AppendFileSink(ITextFormatter formatter, string directory, string prefix)
    {
        _formatter = formatter;
        _directory = directory;
        _prefix = prefix;
        AppendOnlyFile.CreateDirectory(directory);
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
                var file = Current(logEvent.Timestamp.UtcDateTime, bytes.Length);
                file.Write(bytes);
            }
            catch (Exception e) when (e is Shmem.Errors.ShmemException or IOException or UnauthorizedAccessException)
            {
                if (!_reportedFailure)
                {
                    _reportedFailure = true;
                    Console.Error.WriteLine($"could not write to the JSON log in \"{_directory}\": {e.Message}");
                }
            }
        }
    }

    /// <summary>The file for an event of <paramref name="bytes"/> bytes at <paramref name="utc"/>: the open one, or
    /// the next one when the day changed or the size limit would be passed.</summary>
    private AppendOnlyFile Current(DateTime utc, int bytes)
    {
        string day = utc.ToString("yyyyMMdd", CultureInfo.InvariantCulture);
        if (_file is not null && day == _day && _file.Length + bytes <= MaxFileBytes)
            return _file;
        _file?.Dispose();
        _file = null;
        if (day != _day)
        {
            _day = day;
            _sequence = 0;
        }
        while (true)
        {
            string path = PathFor(day, _sequence);
            var file = AppendOnlyFile.Open(path);
            if (file.Length == 0 || file.Length + bytes <= MaxFileBytes)
            {
                _file = file;
                break;
            }
            file.Dispose();
            _sequence++;
        }
        RemoveOldFiles();
        return _file;
    }

    private string PathFor(string day, int sequence) => Path.Combine(_directory,
        sequence == 0 ? $"{_prefix}{day}.json" : $"{_prefix}{day}_{sequence:000}.json");

    private void RemoveOldFiles()
    {
        try
        {
            var old = Directory.GetFiles(_directory, _prefix + "*.json").OrderByDescending(f => f, StringComparer.Ordinal).Skip(RetainedFiles);
            foreach (var f in old)
                File.Delete(f);
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
            _file?.Dispose();
            _file = null;
            _day = null;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _file?.Dispose();
            _file = null;
        }
    }
}
