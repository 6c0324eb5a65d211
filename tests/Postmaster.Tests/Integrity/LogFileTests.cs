using Postmaster.Shmem.Os;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Integrity;

/// <summary>
/// Log files are private and append-only: the instance's JSON log (one file, written by the postmaster's collector)
/// is created mode 0600 in a 0700 directory whatever the umask, and opened O_APPEND (a leftover of a killed server
/// then cannot overwrite the new server's lines).
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class LogFileTests
{
    private const int OAppend = 0x400; // 02000 in /proc/PID/fdinfo "flags" (octal)

    [Fact]
    public void The_json_log_is_created_0600_in_a_0700_directory_and_opened_O_APPEND_even_under_umask_000()
    {
        using var pm = Clusters.Bare("jsonmode", "log_destination = both", "log_directory = 'jsonlogs'", "worker.w.entry = 'idle'");
        // The CLI and the daemon it starts inherit umask 000.
        var r = ProcessRunner.Run("/bin/sh", new[] { "-c", $"umask 000 && exec \"{Paths.PostmasterExe}\" start -D \"{pm.DataDirectory}\" --detach" });
        Assert.True(r.ExitCode == 0, r + "\n" + pm.ServerLog());
        var w = pm.WaitForBackends(b => b.Count == 1, "the idle worker").Single();
        string dir = Path.Combine(pm.DataDirectory, "jsonlogs");
        Wait.Until(() => Directory.GetFiles(dir, "postmaster-*.json").Length == 1, "the instance's JSON log file");
        string pmFile = Directory.GetFiles(dir, "postmaster-*.json").Single();
        Assert.Single(Directory.GetFiles(dir)); // one file for the whole instance: no file per backend
        const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(pmFile));
        Assert.Equal(OwnerReadWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
        Assert.True(IsOpenWithAppend(pm.PostmasterPid, pmFile), "the postmaster's JSON log is opened with O_APPEND");
        Assert.False(Directory.GetFiles($"/proc/{w.Pid!.Value}/fd").Any(fd => TryLink(fd)?.StartsWith(dir, StringComparison.Ordinal) == true),
            "a backend has no log file open: it writes to the collector's pipe");
        pm.Stop();
    }

    [Fact]
    public void Two_writers_of_one_append_only_file_never_overwrite_each_other()
    {
        string path = Path.Combine(Path.GetTempPath(), $"pmtest-append-{Environment.ProcessId}-{Guid.NewGuid():N}.log");
        try
        {
            using (var a = AppendOnlyFile.Open(path))
            using (var b = AppendOnlyFile.Open(path))
            {
                a.Write("first\n"u8);
                b.Write("second\n"u8);
                a.Write("third\n"u8); // a FileStream opened with FileMode.Append would write this over "second"
            }
            Assert.Equal("first\nsecond\nthird\n", File.ReadAllText(path));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Whether process <paramref name="pid"/> has <paramref name="path"/> open, and every such descriptor
    /// carries O_APPEND (/proc/PID/fd and /proc/PID/fdinfo).</summary>
    private static bool IsOpenWithAppend(int pid, string path)
    {
        var fds = Directory.GetFiles($"/proc/{pid}/fd")
            .Where(fd => TryLink(fd) == path)
            .Select(fd => Path.GetFileName(fd))
            .ToList();
        Assert.True(fds.Count > 0, $"process {pid} does not have \"{path}\" open");
        return fds.All(fd =>
        {
            var flags = File.ReadLines($"/proc/{pid}/fdinfo/{fd}").First(l => l.StartsWith("flags:", StringComparison.Ordinal));
            int value = Convert.ToInt32(flags["flags:".Length..].Trim(), 8);
            return (value & OAppend) != 0;
        });
    }

    private static string? TryLink(string fd)
    {
        try
        {
            return new FileInfo(fd).LinkTarget;
        }
        catch (IOException)
        {
            return null; // closed meanwhile
        }
    }
}
