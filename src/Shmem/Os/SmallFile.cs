using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Text;

namespace Postmaster.Shmem.Os;

/// <summary>Reads a small text file that someone else may have replaced by anything: opened O_NONBLOCK|O_NOFOLLOW (a
/// FIFO cannot hang the reader, a symbolic link is not followed), refused unless regular, read up to a bound.</summary>
internal static unsafe class SmallFile
{
    /// <summary>The file's text (at most <paramref name="maxBytes"/>); null when it does not exist. Throws
    /// <see cref="ShmemException"/> naming <paramref name="what"/> and the path otherwise.</summary>
    public static string? Read(string path, int maxBytes, string what)
    {
        int fd = Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_NONBLOCK | NativeArch.Current.O_NOFOLLOW, 0);
        if (fd < 0)
        {
            int errno = Libc.Errno;
            if (errno == Errno.ENOENT)
                return null;
            throw new OsCallException($"could not open {what} \"{path}\"", errno);
        }
        using var handle = new SafeFd(fd);
        var st = FileStat.OfDescriptor(fd, path);
        if ((st.Mode & 0xF000) != 0x8000)
            throw new ShmemException($"{what} \"{path}\" is not a regular file");
        var buffer = new byte[Math.Min(maxBytes, Math.Max(0, st.Size) + 1)];
        int length = 0;
        while (length < buffer.Length)
        {
            nint n;
            fixed (byte* p = &buffer[length])
                n = Libc.read(fd, p, (nuint)(buffer.Length - length));
            if (n == 0)
                break;
            if (n < 0)
            {
                if (Libc.Errno == Errno.EINTR)
                    continue;
                throw new OsCallException($"could not read {what} \"{path}\"", Libc.Errno);
            }
            length += (int)n;
        }
        return Utf8Text.GetString(buffer.AsSpan(0, length));
    }
}
