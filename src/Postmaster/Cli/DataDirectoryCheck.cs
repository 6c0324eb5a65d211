using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Os;

namespace Postmaster.Cli;

/// <summary>The checks a command makes on -D before it looks inside: the directory exists, is a directory, and can
/// be searched. Failures are <see cref="CliException"/>s with the caller's exit code (status: 4).</summary>
public static class DataDirectoryCheck
{
    public static void Require(string dir, int exitCode)
    {
        FileStat? st;
        try
        {
            st = FileStat.TryStat(dir);
        }
        catch (OsCallException e)
        {
            throw new CliException($"could not access data directory \"{dir}\": {OsError.Text(e.Errno)}", exitCode);
        }
        if (st is null)
        {
            // ENOENT, or ENOTDIR: some component above it is a file
            throw new CliException($"data directory \"{dir}\" does not exist", exitCode);
        }
        if (!st.Value.IsDirectory)
            throw new CliException($"data directory \"{dir}\" is not a directory", exitCode);
    }
}
