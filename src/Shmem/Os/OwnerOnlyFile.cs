using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Text;

namespace Postmaster.Shmem.Os;

/// <summary>Files only the owner may read and write (mode 0600 whatever the umask), created with open(2) and an
/// explicit mode rather than through .NET's file APIs, which follow the umask.</summary>
internal static unsafe class OwnerOnlyFile
{
    public const int Mode = 0x180; // 0600

    /// <summary>Replaces <paramref name="path"/> with <paramref name="text"/>: written to a new file (O_EXCL, 0600),
    /// then renamed over the old one, so the result is 0600 even if an older file had another mode, and a reader never
    /// sees half a file.</summary>
    public static void WriteAtomically(string path, string text)
    {
        string temp = path + ".tmp." + ProcessControl.CurrentPid;
        Libc.unlink(temp); // left by a crashed process with our pid; ENOENT is the normal case
        int fd = Libc.open(temp, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_CLOEXEC | NativeArch.Current.O_NOFOLLOW, Mode);
        if (fd < 0)
            throw new OsCallException($"could not create file \"{temp}\"", Libc.Errno);
        try
        {
            using (var handle = new SafeFd(fd))
            {
                if (Libc.fchmod(fd, Mode) != 0)
                    throw new OsCallException($"could not change the mode of file \"{temp}\"", Libc.Errno);
                WriteAll(fd, temp, text);
            }
            if (Libc.rename(temp, path) != 0)
                throw new OsCallException($"could not rename file \"{temp}\" to \"{path}\"", Libc.Errno);
        }
        catch
        {
            Libc.unlink(temp);
            throw;
        }
    }

    /// <summary>Creates <paramref name="path"/> (O_EXCL, mode 0600) with <paramref name="text"/>; EEXIST when it exists.</summary>
    public static void CreateExclusive(string path, string text)
    {
        int fd = Libc.open(path, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_CLOEXEC | NativeArch.Current.O_NOFOLLOW, Mode);
        if (fd < 0)
            throw new OsCallException($"could not create file \"{path}\"", Libc.Errno);
        try
        {
            using var handle = new SafeFd(fd);
            if (Libc.fchmod(fd, Mode) != 0)
                throw new OsCallException($"could not change the mode of file \"{path}\"", Libc.Errno);
            WriteAll(fd, path, text);
        }
        catch
        {
            Libc.unlink(path);
            throw;
        }
    }

    /// <summary>rename(2); throws naming both paths and errno.</summary>
    public static void Rename(string from, string to)
    {
        if (Libc.rename(from, to) != 0)
            throw new OsCallException($"could not rename \"{from}\" to \"{to}\"", Libc.Errno);
    }

    private static void WriteAll(int fd, string path, string text)
    {
        var bytes = Utf8Text.GetBytes(text);
        fixed (byte* p = bytes)
        {
            nint done = 0;
            while (done < bytes.Length)
            {
                nint n = Libc.write(fd, p + done, (nuint)(bytes.Length - done));
                if (n < 0 && Libc.Errno == Errno.EINTR)
                    continue;
                if (n <= 0)
                    throw new OsCallException($"could not write file \"{path}\"", n < 0 ? Libc.Errno : Errno.ENOSPC);
                done += n;
            }
        }
    }

    /// <summary>
    /// Opens <paramref name="path"/> for appending (O_APPEND), creating it with mode 0600 when it does not exist; refuses
    /// a directory. Returns the descriptor and the file's size when opened (where this process's output starts).
    /// </summary>
    public static (SafeFd Fd, long Offset) OpenForAppend(string path)
    {
        int flags = Libc.O_WRONLY | Libc.O_APPEND | Libc.O_CLOEXEC;
        bool created = true;
        int fd = Libc.open(path, flags | Libc.O_CREAT | Libc.O_EXCL, Mode);
        if (fd < 0 && Libc.Errno == Errno.EEXIST)
        {
            created = false;
            fd = Libc.open(path, flags | Libc.O_NONBLOCK, 0);
        }
        if (fd < 0)
            throw new OsCallException($"could not open log file \"{path}\"", Libc.Errno);
        var handle = new SafeFd(fd);
        try
        {
            if (created && Libc.fchmod(fd, Mode) != 0)
                throw new OsCallException($"could not change the mode of log file \"{path}\"", Libc.Errno);
            var st = FileStat.OfDescriptor(fd, path);
            if (st.IsDirectory)
                throw new OsCallException($"could not open log file \"{path}\"", 21 /* EISDIR */);
            return (handle, st.Size);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Makes descriptors 1 and 2 refer to <paramref name="fd"/> (dup2), e.g. the daemon's log file once it
    /// holds the data directory's lock.</summary>
    public static void RedirectStandardOutput(SafeFd fd, string objectName)
    {
        foreach (int target in new[] { 1, 2 })
        {
            int rc;
            do
                rc = Libc.dup2(fd.Fd, target);
            while (rc < 0 && Libc.Errno == Errno.EINTR);
            if (rc < 0)
                throw new OsCallException($"could not redirect descriptor {target} to \"{objectName}\" (dup2)", Libc.Errno);
        }
    }
}
