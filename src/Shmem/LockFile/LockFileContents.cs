namespace Postmaster.Shmem.LockFile;

/// <summary>Status words of line 8, padded to one width so an in-place update never shortens the file.</summary>
internal static class PmStatus
{
    public const string Starting = "starting";
    public const string Ready = "ready   ";
    public const string Stopping = "stopping";
}

/// <summary>
/// The parsed text of postmaster.pid (PostgreSQL's pidfile.h layout, plus our own lines after line 8):
/// 1 pid, 2 data directory, 3 start time (Unix seconds), 4 port (0: no TCP port), 5 control socket path,
/// 6 listen address (empty), 7 "KEY ID" of the main segment, 8 status, 9 "TYPE SIZE DSMTYPE" (main segment type and
/// size, dynamic shared memory type).
/// Any line may be missing: the file is read by other processes while it is being written.
/// </summary>
internal sealed record LockFileContents(
    int Pid, string DataDir, long StartTime, long? ShmKey, long? ShmId, string? Status, string? ShmType, long? ShmSize,
    string? Socket, string? DsmType = null)
{
    public const int LinePid = 1;
    public const int LineDataDir = 2;
    public const int LineStartTime = 3;
    public const int LinePort = 4;
    public const int LineSocket = 5;
    public const int LineListenAddr = 6;
    public const int LineShmemKey = 7;
    public const int LineStatus = 8;
    public const int LineShmemInfo = 9;

    public string? TrimmedStatus => Status?.Trim();

    /// <summary>Lines 7 and 9 as one typed value; null while they are missing or when they do not parse.</summary>
    public Instance.SharedMemoryDescriptor? SharedMemory =>
        Instance.SharedMemoryDescriptor.From(ShmType, ShmKey, ShmId, ShmSize, DsmType);

    /// <summary>Line 1 as the daemon writes it: decimal digits only, a positive int.</summary>
    public static bool TryParsePid(string line, out int pid) =>
        int.TryParse(line, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out pid) && pid > 0;

    /// <summary>Parses what is there; null when line 1 is not a positive pid (empty or bogus file), unless
    /// <paramref name="requirePid"/> is false (then Pid is 0: the other lines of a damaged file). The pid is what the
    /// file says, not proven (see <see cref="DataDirLockFile.Inspect"/>).</summary>
    public static LockFileContents? Parse(string text, bool requirePid = true)
    {
        var lines = text.Split('\n');
        string Line(int n) => lines.Length >= n ? lines[n - 1] : "";
        if (!TryParsePid(Line(LinePid), out int pid))
        {
            if (requirePid || text.Length == 0)
                return null;
            pid = 0;
        }
        long.TryParse(Line(LineStartTime).Trim(), out long start);
        long? key = null, id = null, size = null;
        var shm = Line(LineShmemKey).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (shm.Length == 2 && long.TryParse(shm[0], out long k) && long.TryParse(shm[1], out long i))
            (key, id) = (k, i);
        string? type = null, dsmType = null;
        var info = Line(LineShmemInfo).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (info.Length >= 2 && long.TryParse(info[1], out long s))
            (type, size) = (info[0], s);
        if (info.Length >= 3)
            dsmType = info[2];
        string status = Line(LineStatus);
        string socket = Line(LineSocket).Trim();
        return new LockFileContents(pid, Line(LineDataDir), start, key, id,
            status.Length == 0 ? null : status, type, size, socket.Length == 0 ? null : socket, dsmType);
    }
}
