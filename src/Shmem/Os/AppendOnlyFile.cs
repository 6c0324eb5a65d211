using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;

namespace Postmaster.Shmem.Os;

/// <summary>
/// A file opened for appending only: <c>open(O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode)</c> with an explicit
/// mode (0600 unless told otherwise), so the umask cannot widen it, and every <see cref="Write"/> is one
/// <c>write(2)</c> that the kernel places at the current end of the file. Several processes (a new server and a
/// leftover backend of a killed one) can therefore share a log file without overwriting each other's lines, which a
/// <see cref="FileStream"/> opened with <see cref="FileMode.Append"/> does not guarantee (it seeks once and writes at
/// its own position). A file that already exists keeps its mode unless <see cref="Open"/> is asked to restrict it.
/// Thread-safe for concurrent <see cref="Write"/> calls (each record is one system call).
/// </summary>
internal sealed unsafe class AppendOnlyFile : IDisposable
{
    /// <summary>rw------- : log files are readable by their owner only.</summary>
    public const uint OwnerOnlyMode = 0x180;

    /// <summary>rwx------ : the directory of log files.</summary>
    public const UnixFileMode OwnerOnlyDirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly SafeFd _fd;

    private AppendOnlyFile(SafeFd fd, string path)
    {
        _fd = fd;
        Path = path;
    }

    public string Path { get; }

    /// <summary>
    /// Opens (creating with <paramref name="mode"/>) <paramref name="path"/> for appending. With
    /// <paramref name="restrictExisting"/>, an existing file that grants group or other permissions is narrowed to
    /// <paramref name="mode"/> with fchmod. Throws <see cref="OsCallException"/> naming the call and the file.
    /// </summary>
    public static AppendOnlyFile Open(string path, uint mode = OwnerOnlyMode, bool restrictExisting = true)
    {
        const int Flags = Libc.O_WRONLY | Libc.O_CREAT | Libc.O_APPEND | Libc.O_CLOEXEC;
        int fd = Libc.open(path, Flags, (int)mode);
        if (fd < 0)
            throw new OsCallException($"could not open log file \"{path}\" (open with O_APPEND)", Libc.Errno);
        var safe = new SafeFd(fd);
        try
        {
            if (restrictExisting)
            {
                var st = FileStat.OfDescriptor(fd, path);
                if ((st.Permissions & ~mode & 0x1FF) != 0 && Libc.fchmod(fd, mode) != 0)
                    throw new OsCallException($"could not change the mode of log file \"{path}\" (fchmod)", Libc.Errno);
            }
            return new AppendOnlyFile(safe, path);
        }
        catch
        {
            safe.Dispose();
            throw;
        }
    }

    /// <summary>Creates <paramref name="directory"/> (and its parents) with mode 0700 when it does not exist.</summary>
    public static void CreateDirectory(string directory) => Directory.CreateDirectory(directory, OwnerOnlyDirectoryMode);

    /// <summary>Appends <paramref name="bytes"/> with one write(2) (repeated only for a short write or EINTR).
    /// Throws <see cref="OsCallException"/> naming the file.</summary>
    public void Write(ReadOnlySpan<byte> bytes)
    {
        fixed (byte* p = bytes)
        {
            int done = 0;
            while (done < bytes.Length)
            {
                nint n = Libc.write(_fd.Fd, p + done, (nuint)(bytes.Length - done));
                if (n < 0)
                {
                    int errno = Libc.Errno;
                    if (errno == Errno.EINTR)
                        continue;
                    throw new OsCallException($"could not write to log file \"{Path}\" (write)", errno);
                }
                done += (int)n;
            }
        }
    }

    /// <summary>The file's current size (fstat), for size-based rotation.</summary>
    public long Length => FileStat.OfDescriptor(_fd.Fd, Path).Size;

    public void Dispose() => _fd.Dispose();
}
