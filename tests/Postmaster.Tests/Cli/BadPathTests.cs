using Postmaster.Shmem.Os;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Cli;

/// <summary>Issue 11 #13: a data-directory path that cannot work (too long, a file, a file where a directory is
/// expected, an unreadable directory) gives one clear line naming the object and the errno, never a stack trace or a
/// .NET resource key, from every command.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class BadPathTests
{
    private static readonly string[][] Commands =
    {
        new[] { "init" }, new[] { "start" }, new[] { "start", "--detach" }, new[] { "stop" }, new[] { "restart" },
        new[] { "reload" }, new[] { "status" }, new[] { "shmem" }, new[] { "spawn", "--worker", "idle" },
        new[] { "terminate", "somebody" }, new[] { "cleanup" },
    };

    public static IEnumerable<object[]> CommandCases() => Commands.Select(c => new object[] { string.Join(' ', c) });

    [Theory]
    [MemberData(nameof(CommandCases))]
    public void A_path_longer_than_PATH_MAX_is_a_usage_error(string command)
    {
        string dir = "/tmp/" + string.Join('/', Enumerable.Repeat(new string('d', 200), 24));
        var r = Run(command, dir);
        CliAssert.OneClearFailure(r, 2);
        Assert.Contains("invalid data directory", r.Stderr);
        Assert.Contains("the path is too long", r.Stderr);
        var env = PmInstance.Run(Paths.PostmasterExe, command.Split(' '), new Dictionary<string, string> { ["PMDATA"] = dir });
        CliAssert.OneClearFailure(env, 2);
        Assert.Contains("(from $PMDATA)", env.Stderr);
    }

    [Theory]
    [MemberData(nameof(CommandCases))]
    public void A_file_where_a_directory_is_expected_gives_one_clear_line(string command)
    {
        string file = Path.Combine(Path.GetTempPath(), $"pmtest-{Environment.ProcessId}-notadir");
        File.WriteAllText(file, "not a directory\n");
        try
        {
            foreach (var dir in new[] { file, Path.Combine(file, "sub") })
            {
                var r = Run(command, dir);
                if (command == "start")
                    CliAssert.ClearServerFailure(r);
                else
                    CliAssert.OneClearFailure(r, command == "status" ? new[] { 4 } : new[] { 1, 4 });
                Assert.Matches("not a directory|Not a directory|does not exist", r.Stderr);
            }
            Assert.Equal("not a directory\n", File.ReadAllText(file));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [MemberData(nameof(CommandCases))]
    public void A_directory_the_caller_cannot_search_gives_one_clear_line(string command)
    {
        if (ProcessControl.EffectiveUid == 0)
            return; // root is not stopped by mode 000; the file cases above cover the error paths
        using var pm = new PmInstance("noaccess");
        pm.InitBare();
        File.SetUnixFileMode(pm.DataDir, UnixFileMode.None);
        try
        {
            var r = Run(command, pm.DataDir);
            if (command == "start")
                CliAssert.ClearServerFailure(r);
            else
                CliAssert.OneClearFailure(r, command == "status" ? new[] { 4 } : new[] { 1, 4 });
            Assert.Contains("Permission denied", r.Stderr);
        }
        finally
        {
            File.SetUnixFileMode(pm.DataDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    private static CliResult Run(string command, string dir)
    {
        var parts = command.Split(' ');
        return PmInstance.Cli(new[] { parts[0], "-D", dir }.Concat(parts[1..]).ToArray());
    }
}
