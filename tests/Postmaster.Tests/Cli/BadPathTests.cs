using Postmaster.Shmem.Os;
using Postmaster.Testing;
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
        var env = ProcessRunner.Run(Paths.PostmasterExe, command.Split(' '), new Dictionary<string, string> { ["PMDATA"] = dir });
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
        // Mode 000 does not stop root: as root, the commands run as "nobody" (setpriv), who owns the directories.
        bool asNobody = ProcessControl.EffectiveUid == 0;
        if (asNobody && !File.Exists(Setpriv))
            return;
        string top = Directory.CreateTempSubdirectory("pmtest-noaccess-").FullName;
        try
        {
            string dir = Path.Combine(top, "data");
            if (asNobody)
                Chown(top);
            var init = Run("init", dir, asNobody);
            Assert.True(init.ExitCode == 0, init.ToString());
            string locked = Path.Combine(top, "locked");
            Directory.CreateDirectory(locked);
            if (asNobody)
                Chown(locked);
            File.SetUnixFileMode(dir, UnixFileMode.None);
            File.SetUnixFileMode(locked, UnixFileMode.None);
            foreach (var target in new[] { dir, Path.Combine(locked, "data") })
            {
                var r = Run(command, target, asNobody);
                if (command == "start")
                    CliAssert.ClearServerFailure(r);
                else
                    CliAssert.OneClearFailure(r, command == "status" ? new[] { 4 } : new[] { 1, 4 });
                Assert.Matches("Permission denied|has invalid permissions", r.Stderr);
            }
        }
        finally
        {
            foreach (var d in Directory.EnumerateDirectories(top))
                File.SetUnixFileMode(d, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Directory.Delete(top, recursive: true);
        }
    }

    private const string Setpriv = "/usr/bin/setpriv";
    private const int Nobody = 65534;

    private static void Chown(string path)
    {
        var r = ProcessRunner.Run("/bin/chown", new[] { $"{Nobody}:{Nobody}", path });
        Assert.True(r.ExitCode == 0, r.ToString());
    }

    private static CliResult Run(string command, string dir, bool asNobody)
    {
        if (!asNobody)
            return Run(command, dir);
        var parts = command.Split(' ');
        return ProcessRunner.Run(Setpriv, new[] { $"--reuid={Nobody}", $"--regid={Nobody}", "--clear-groups", Paths.PostmasterExe, parts[0], "-D", dir }
            .Concat(parts[1..]), new Dictionary<string, string> { ["HOME"] = "/tmp", ["DOTNET_CLI_HOME"] = "/tmp" });
    }

    private static CliResult Run(string command, string dir)
    {
        var parts = command.Split(' ');
        return PostmasterCli.Run(new[] { parts[0], "-D", dir }.Concat(parts[1..]).ToArray());
    }
}
