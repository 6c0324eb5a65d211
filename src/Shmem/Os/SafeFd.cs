using System.Runtime.InteropServices;
using Postmaster.Shmem.Interop;

namespace Postmaster.Shmem.Os;

/// <summary>Owns one file descriptor; Dispose closes it. -1 is the invalid value (0 is a valid descriptor).</summary>
internal sealed class SafeFd : SafeHandle
{
    public SafeFd(int fd) : base(-1, ownsHandle: true) => SetHandle(fd);

    public override bool IsInvalid => handle == -1;

    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => Libc.close((int)handle) == 0;
}
