using Postmaster.Shmem.Os;

namespace Postmaster.Shmem.LockFile;

/// <summary>What a client found in DIR/postmaster.pid (<see cref="DataDirLockFile.Inspect"/>).</summary>
/// <param name="Path">The lock file.</param>
/// <param name="Exists">There is a lock file.</param>
/// <param name="Locked">A process holds its OFD lock: a server is running (or starting, or stopping).</param>
/// <param name="Contents">The parsed lines; null when there is no file or line 1 is not a pid.</param>
/// <param name="PidLine">Line 1 as found.</param>
/// <param name="Holder">A handle on the process proven to hold the lock (null when not locked, not proven, or not
/// asked to prove). Signal the server only through this.</param>
/// <param name="Unproven">Why line 1 is not the holder, when the file is locked and the pid could not be proven.</param>
/// <param name="ActualHolders">Then: the processes found holding the lock (a /proc scan, for messages only).</param>
internal sealed record LockFileState(string Path, bool Exists, bool Locked, LockFileContents? Contents, string PidLine,
    ProcessHandle? Holder, string? Unproven, IReadOnlyList<int>? ActualHolders = null) : IDisposable
{
    public void Dispose() => Holder?.Dispose();
}
