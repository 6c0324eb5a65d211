using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Interop;
using Postmaster.Shmem.Text;

namespace Postmaster.Shmem.Os;

/// <summary>The fields of struct stat that postmaster needs.</summary>
internal readonly record struct FileStat(ulong Device, ulong Inode, uint Mode, uint Uid, long Size)
{
    public bool IsDirectory => (Mode & 0xF000) == 0x4000;

    public uint Permissions => Mode & 0xFFF;

    /// <summary>stat(2); null when the path does not exist (ENOENT/ENOTDIR), an exception for other failures.</summary>
    public static unsafe FileStat? TryStat(string path)
    {
        var arch = NativeArch.Current;
        byte* buf = stackalloc byte[arch.StatStructSize];
        var name = Utf8Text.ToNulTerminated(path, stackalloc byte[256]);
        int rc;
        fixed (byte* p = name)
            rc = Libc.stat(p, buf);
        if (rc != 0)
        {
            int errno = Libc.Errno;
            if (errno is Errno.ENOENT or Errno.ENOTDIR)
                return null;
            throw new OsCallException($"could not stat file \"{path}\"", errno);
        }
        return FromBuffer(buf);
    }

    /// <summary>fstat(2) of an open descriptor.</summary>
    public static unsafe FileStat OfDescriptor(int fd, string objectName)
    {
        var arch = NativeArch.Current;
        byte* buf = stackalloc byte[arch.StatStructSize];
        if (Libc.fstat(fd, buf) != 0)
            throw new OsCallException($"could not stat \"{objectName}\"", Libc.Errno);
        return FromBuffer(buf);
    }

    private static unsafe FileStat FromBuffer(byte* buf)
    {
        var arch = NativeArch.Current;
        return new FileStat(
            *(ulong*)(buf + arch.StatDevOffset),
            *(ulong*)(buf + arch.StatInoOffset),
            *(uint*)(buf + arch.StatModeOffset),
            *(uint*)(buf + arch.StatUidOffset),
            *(long*)(buf + arch.StatSizeOffset));
    }
}
