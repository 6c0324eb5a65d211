using System.Text;
using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Text;

namespace Postmaster.Shmem.LockFile;

/// <summary>
/// DIR/postmaster.pid: the interlock that makes a data directory belong to one postmaster.
/// Overview: unlike PostgreSQL, liveness is not guessed from the pid in the file. The daemon holds an exclusive
/// open-file-description (OFD) lock on the file for its whole life, on the one descriptor it created the file with
/// and never reopens (closing any other descriptor of the file would not drop an OFD lock, but we keep the rule
/// anyway); the kernel drops the lock when the process dies, zombie or not. A second postmaster, or a client
/// (status/stop), tests that lock; a client signals the server only once <see cref="Inspect"/> has proven that the pid
/// on line 1 holds it (<see cref="LockHolderProof"/>). Creation and stale-file replacement run under a short flock on the data directory
/// itself, so two simultaneous starts cannot both decide that the file is stale. Lines are written once at fixed
/// widths and later updated in place with pwrite, never shortened.
/// </summary>
internal sealed class DataDirLockFile : IDisposable
{
    public const string FileName = "postmaster.pid";
    private const int FileMode = 0x180; // 0600
    private const int KeyWidth = 10;
    private const int IdWidth = 20;
    private const int TypeWidth = 5;
    private const int SizeWidth = 20;
    private static readonly TimeSpan DirLockTimeout = TimeSpan.FromSeconds(10);

    private readonly SafeFd _fd;
    private readonly long _shmemLineOffset;
    private readonly long _statusLineOffset;
    private readonly long _infoLineOffset;
    private bool _removed;

    private DataDirLockFile(string path, SafeFd fd, long shmemLineOffset, long statusLineOffset, long infoLineOffset)
    {
        Path = path;
        _fd = fd;
        _shmemLineOffset = shmemLineOffset;
        _statusLineOffset = statusLineOffset;
        _infoLineOffset = infoLineOffset;
    }

    public string Path { get; }

    /// <summary>
    /// Creates DIR/postmaster.pid for this process, or fails with PostgreSQL's FATAL messages. A stale file (its lock
    /// is free: the owner is dead) is handed to <paramref name="checkStale"/>, which throws if what it names is still
    /// in use (e.g. a shared memory segment with live processes attached), and is then replaced.
    /// </summary>
    public static DataDirLockFile Create(string dataDir, long startTime, LockFileListenLines listen,
        Action<LockFileContents>? checkStale, IShmemLogger log)
    {
        string path = System.IO.Path.Combine(dataDir, FileName);
        using var dirLock = LockDirectory(dataDir);
        var existing = OpenChecked(path, Libc.O_RDWR);
        if (existing is not null)
        {
            using var old = existing;
            if (!TryLockExclusive(old, out int errno))
            {
                if (errno is not (Errno.EAGAIN or Errno.EACCES))
                    throw new OsCallException($"could not lock file \"{path}\"", errno);
                var other = LockFileContents.Parse(ReadAll(old));
                var self = FileStat.OfDescriptor(old.Fd, path);
                if (other is not null && other.Pid > 1 && LockHolderProof.Check(other.Pid, self) is null)
                    throw new ShmemException($"lock file \"{FileName}\" already exists",
                        hint: $"Is another postmaster (PID {other.Pid}) running in data directory \"{dataDir}\"?");
                var holders = LockHolderProof.FindHolders(self);
                throw new ShmemException($"lock file \"{FileName}\" already exists",
                    detail: "Its lock is held, but line 1 does not name the holder" +
                            (holders.Count > 0 ? $"; it is held by PID {string.Join(", ", holders)}." : "."),
                    hint: $"Another postmaster is running in data directory \"{dataDir}\"; its lock file is damaged.");
            }
            var contents = LockFileContents.Parse(ReadAll(old));
            if (contents is not null)
                checkStale?.Invoke(contents);
            log.Write(ShmemLogLevel.Log, contents is null
                ? $"removing empty or corrupt lock file \"{path}\" (no process holds it)"
                : $"removing stale lock file \"{path}\" of postmaster PID {contents.Pid}, which is no longer running");
            if (Libc.unlink(path) != 0 && Libc.Errno != Errno.ENOENT)
                throw new OsCallException($"could not remove old lock file \"{path}\"", Libc.Errno,
                    hint: "The file seems accidentally left over, but it could not be removed. Please remove the file by hand and try again.");
        }

        int fd = Libc.open(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_EXCL | Libc.O_CLOEXEC | NativeArch.Current.O_NOFOLLOW, FileMode);
        if (fd < 0)
            throw new OsCallException($"could not create lock file \"{path}\"", Libc.Errno);
        var handle = new SafeFd(fd);
        try
        {
            if (!TryLockExclusive(handle, out int errno))
                throw new OsCallException($"could not lock file \"{path}\"", errno);
            var sb = new StringBuilder();
            sb.Append(ProcessControl.CurrentPid).Append('\n');
            sb.Append(dataDir).Append('\n');
            sb.Append(startTime).Append('\n');
            sb.Append(listen.Port).Append('\n');                 // line 4: TCP port (0 = not listening)
            sb.Append(listen.SocketDirectory).Append('\n');      // line 5: first Unix socket directory
            sb.Append(listen.ListenAddress).Append('\n');        // line 6: first listen address
            long shmemOffset = Utf8Text.GetByteCount(sb.ToString());
            sb.Append(ShmemLine(0, 0)).Append('\n');             // line 7, rewritten in place once the segment exists
            long statusOffset = Utf8Text.GetByteCount(sb.ToString());
            sb.Append(PmStatus.Starting).Append('\n');           // line 8
            long infoOffset = Utf8Text.GetByteCount(sb.ToString());
            sb.Append(InfoLine("", 0, "")).Append('\n');          // line 9
            // No fsync: the file only means something while its creator lives and holds the lock, so surviving a
            // power loss would only produce a stale file, which the next start replaces anyway.
            WriteAt(handle, path, 0, sb.ToString());
            return new DataDirLockFile(path, handle, shmemOffset, statusOffset, infoOffset);
        }
        catch
        {
            Libc.unlink(path);
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Records the main segment and the dynamic shared memory type (lines 7 and 9).</summary>
    public void SetSharedMemory(Instance.SharedMemoryDescriptor shmem)
    {
        WriteAt(_fd, Path, _shmemLineOffset, ShmemLine(shmem.Key, shmem.Id));
        WriteAt(_fd, Path, _infoLineOffset, InfoLine(shmem.KindName, shmem.Size, shmem.DsmTypeName));
    }

    /// <summary>Rewrites line 8 in place (<see cref="PmStatus"/>).</summary>
    public void SetStatus(string status)
    {
        if (status.Length != PmStatus.Starting.Length)
            throw new ArgumentException($"status \"{status}\" must be padded to {PmStatus.Starting.Length} characters");
        WriteAt(_fd, Path, _statusLineOffset, status);
    }

    /// <summary>True while the file at <see cref="Path"/> is still the one this process created (nobody removed or
    /// replaced it). PostgreSQL's RecheckDataDirLockFile, without reopening the file.</summary>
    public bool StillOurs()
    {
        var mine = FileStat.OfDescriptor(_fd.Fd, Path);
        var now = FileStat.TryStat(Path);
        return now is not null && now.Value.Device == mine.Device && now.Value.Inode == mine.Inode;
    }

    /// <summary>Unlinks the file and releases the lock (clean exit only).</summary>
    public void Remove()
    {
        if (_removed)
            return;
        _removed = true;
        if (StillOurs())
            Libc.unlink(Path);
        _fd.Dispose();
    }

    /// <summary>Releases the lock without removing the file (the process is going away abnormally).</summary>
    public void Dispose() => _fd.Dispose();

    /// <summary>
    /// For clients: is a live postmaster holding DIR/postmaster.pid, and what does the file say? Contents are null when
    /// there is no file (or line 1 is not a pid). The pid in the contents is NOT proven to be the holder: to signal the
    /// server use <see cref="Inspect"/>, which proves it.
    /// </summary>
    public static (bool Locked, LockFileContents? Contents) Probe(string dataDir)
    {
        using var state = Inspect(dataDir, prove: false);
        return (state.Locked, state.Contents);
    }

    /// <summary>
    /// Reads DIR/postmaster.pid without ever blocking: opened O_NONBLOCK|O_NOFOLLOW, refused unless it is a regular
    /// file (a FIFO, device, directory or symbolic link there is an error, not a hang), at most
    /// <see cref="MaxReadBytes"/> read. When the file is locked and <paramref name="prove"/> is set, the pid on line 1 is
    /// checked to be the lock holder (<see cref="LockHolderProof"/>); <see cref="LockFileState.Holder"/> is then a
    /// handle on that process, opened before the check, through which it may be signalled.
    /// Throws <see cref="ShmemException"/> (naming the file) when the file cannot be opened, is not a regular file, or
    /// its lock cannot be tested.
    /// </summary>
    public static LockFileState Inspect(string dataDir, bool prove = true)
    {
        // A daemon creating the file holds its lock a moment before the text is there (one pwrite), and one replacing a
        // stale file holds the old file's lock until it unlinks it: look again briefly before calling a file damaged.
        var deadline = Environment.TickCount64 + (long)TransientWindow.TotalMilliseconds;
        while (true)
        {
            var state = InspectOnce(dataDir, prove, out bool transient);
            if (state.Unproven is null || !transient || Environment.TickCount64 >= deadline)
                return state;
            state.Dispose();
            PreciseSleep.For(TimeSpan.FromMilliseconds(1));
        }
    }

    /// <summary>How long <see cref="Inspect"/> waits for a lock file that is being written or replaced.</summary>
    private static readonly TimeSpan TransientWindow = TimeSpan.FromMilliseconds(250);

    private static LockFileState InspectOnce(string dataDir, bool prove, out bool transient)
    {
        transient = false;
        string path = System.IO.Path.Combine(dataDir, FileName);
        using var handle = OpenChecked(path, Libc.O_RDONLY);
        if (handle is null)
            return new LockFileState(path, false, false, null, "", null, null);
        bool locked = IsLocked(handle, path);
        string text = ReadAll(handle);
        int newline = text.IndexOf('\n');
        string pidLine = newline < 0 ? text : text[..newline];
        var contents = LockFileContents.Parse(text);
        if (!locked || !prove)
            return new LockFileState(path, true, locked, contents, pidLine, null, null);
        var self = FileStat.OfDescriptor(handle.Fd, path);
        var now = FileStat.TryStat(path);
        bool changing = text.Length == 0 || now is null || now.Value.Inode != self.Inode || now.Value.Device != self.Device;
        transient = changing;
        var partial = contents ?? LockFileContents.Parse(text, requirePid: false);
        if (!LockFileContents.TryParsePid(pidLine, out int pid))
            return Unproven(pidLine.Length == 0 ? "line 1 is empty" : $"line 1 is \"{Printable(pidLine)}\", not a process ID");
        if (pid <= 1)
            return Unproven($"line 1 names PID {pid}, which is never a postmaster");
        var holder = ProcessHandle.TryOpen(pid);
        if (holder is null)
            return Unproven($"line 1 names PID {pid}, which does not exist");
        if (LockHolderProof.Check(pid, self) is { } why)
        {
            holder.Dispose();
            return Unproven($"line 1 names PID {pid}, {why}");
        }
        return new LockFileState(path, true, true, contents, pidLine, holder, null);

        LockFileState Unproven(string why) =>
            new(path, true, true, partial, pidLine, null, why, changing ? null : HoldersOf(self));
    }

    private static IReadOnlyList<int> HoldersOf(FileStat lockFile) => LockHolderProof.FindHolders(lockFile);

    /// <summary>At most this much of the file is read (the real file is a few hundred bytes).</summary>
    public const int MaxReadBytes = 8192;

    private static string TypeName(uint mode) => (mode & 0xF000) switch
    {
        0x1000 => "FIFO",
        0x2000 => "character device",
        0x4000 => "directory",
        0x6000 => "block device",
        0xC000 => "socket",
        _ => "special file",
    };

    private static string Printable(string s)
    {
        var t = new string(s.Select(c => char.IsControl(c) ? '?' : c).ToArray());
        return t.Length > 40 ? t[..40] + "..." : t;
    }

    /// <summary>Opens an existing lock file without following a symbolic link or blocking on a FIFO, and checks that it
    /// is a regular file. Null when it does not exist.</summary>
    private static SafeFd? OpenChecked(string path, int access)
    {
        int fd = Libc.open(path, access | Libc.O_CLOEXEC | Libc.O_NONBLOCK | NativeArch.Current.O_NOFOLLOW, 0);
        if (fd < 0)
        {
            int errno = Libc.Errno;
            if (errno is Errno.ENOENT)
                return null;
            if (errno == Libc.ELOOP)
                throw new ShmemException($"lock file \"{path}\" is a symbolic link",
                    hint: "Only a postmaster creates this file; remove the link.");
            throw new OsCallException($"could not open lock file \"{path}\"", errno);
        }
        var handle = new SafeFd(fd);
        FileStat st;
        try
        {
            st = FileStat.OfDescriptor(fd, path);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
        if ((st.Mode & 0xF000) != 0x8000)
        {
            handle.Dispose();
            throw new ShmemException($"lock file \"{path}\" is not a regular file (it is a {TypeName(st.Mode)})",
                hint: "Only a postmaster creates this file; remove whatever is there instead.");
        }
        return handle;
    }

    private static string ShmemLine(long key, long id) => $"{key.ToString().PadLeft(KeyWidth)} {id.ToString().PadLeft(IdWidth)}";

    private static string InfoLine(string type, long size, string dsmType) =>
        $"{type.PadRight(TypeWidth)} {size.ToString().PadLeft(SizeWidth)} {dsmType.PadRight(TypeWidth)}";

    private static unsafe bool TryLockExclusive(SafeFd fd, out int errno)
    {
        var lk = new Libc.Flock { l_type = Libc.F_WRLCK, l_whence = Libc.SEEK_SET, l_start = 0, l_len = 0 };
        if (Libc.fcntl_lock(fd.Fd, Libc.F_OFD_SETLK, &lk) == 0)
        {
            errno = 0;
            return true;
        }
        errno = Libc.Errno;
        return false;
    }

    private static unsafe bool IsLocked(SafeFd fd, string path)
    {
        var lk = new Libc.Flock { l_type = Libc.F_WRLCK, l_whence = Libc.SEEK_SET, l_start = 0, l_len = 0 };
        if (Libc.fcntl_lock(fd.Fd, Libc.F_OFD_GETLK, &lk) != 0)
            throw new OsCallException($"could not test lock on file \"{path}\"", Libc.Errno);
        return lk.l_type != Libc.F_UNLCK;
    }

    private static SafeFd LockDirectory(string dataDir)
    {
        int fd = Libc.open(dataDir, Libc.O_RDONLY | Libc.O_CLOEXEC | NativeArch.Current.O_DIRECTORY, 0);
        if (fd < 0)
            throw new OsCallException($"could not open data directory \"{dataDir}\"", Libc.Errno);
        var handle = new SafeFd(fd);
        var deadline = Environment.TickCount64 + (long)DirLockTimeout.TotalMilliseconds;
        var backoff = new Locks.Backoff();
        while (Libc.flock(fd, Libc.LOCK_EX | Libc.LOCK_NB) != 0)
        {
            int errno = Libc.Errno;
            if (errno != Errno.EWOULDBLOCK || Environment.TickCount64 > deadline)
            {
                handle.Dispose();
                throw new OsCallException($"could not lock data directory \"{dataDir}\"", errno,
                    hint: "Another postmaster is starting in this data directory.");
            }
            backoff.Once();
        }
        return handle; // closing the descriptor releases the flock
    }

    private static unsafe string ReadAll(SafeFd fd)
    {
        byte* buf = stackalloc byte[MaxReadBytes];
        nint n = Libc.pread(fd.Fd, buf, MaxReadBytes, 0);
        return n <= 0 ? "" : Utf8Text.GetString(new ReadOnlySpan<byte>(buf, (int)n));
    }

    private static unsafe void WriteAt(SafeFd fd, string path, long offset, string text)
    {
        var bytes = Utf8Text.GetBytes(text);
        fixed (byte* p = bytes)
        {
            nint n = Libc.pwrite(fd.Fd, p, (nuint)bytes.Length, offset);
            if (n != bytes.Length)
                throw new OsCallException($"could not write lock file \"{path}\"", n < 0 ? Libc.Errno : Errno.ENOSPC);
        }
    }
}

/// <summary>Lines 4 to 6 of postmaster.pid, as PostgreSQL writes them: the port (0 when the instance does not listen),
/// the first Unix-domain socket directory and the first TCP listen address (empty when none).</summary>
internal readonly record struct LockFileListenLines(int Port, string SocketDirectory, string ListenAddress)
{
    public static LockFileListenLines None => new(0, "", "");
}
