using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Cli;

/// <summary>Issue 11 #9 and #15: every option is validated where it enters. A bad value or an unknown option is a usage
/// error (exit 2) with a message naming the option and what it accepts, before anything is started; no .NET type
/// names; help states each default once.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class OptionTests
{
    public static readonly string[] Commands = { "init", "start", "stop", "restart", "reload", "status", "shmem", "spawn", "terminate", "cleanup" };

    public static IEnumerable<object[]> TimeoutCases() =>
        from command in new[] { "start", "stop", "restart", "spawn", "terminate" }
        from value in new[] { "-5", "abc", "1.5", "99999999999", "" }
        select new object[] { command, value };

    [Theory]
    [MemberData(nameof(TimeoutCases))]
    public void A_bad_timeout_is_a_usage_error_before_anything_starts(string command, string value)
    {
        using var pm = Clusters.Empty("badtimeout");
        var extra = command switch
        {
            "start" => new[] { "--detach" },
            "spawn" => new[] { "--worker", "idle" },
            "terminate" => new[] { "somebody" },
            _ => Array.Empty<string>(),
        };
        var r = pm.Run(command, extra.Concat(new[] { "-t", value }).ToArray());
        CliAssert.OneClearFailure(r, 2);
        Assert.Contains(value.Length == 0 ? "--timeout" : $"invalid value for option \"--timeout\": \"{value}\"", r.Stderr);
        Assert.False(Directory.Exists(pm.DataDirectory), "nothing was started or created");
    }

    public static IEnumerable<object[]> UnknownOptionCases() => Commands.Select(c => new object[] { c });

    [Theory]
    [MemberData(nameof(UnknownOptionCases))]
    public void An_unknown_option_is_a_usage_error_for_every_command(string command)
    {
        using var pm = Clusters.Empty("bogus");
        var extra = command switch
        {
            "spawn" => new[] { "--worker", "idle" },
            _ => Array.Empty<string>(),
        };
        var r = pm.Run(command, extra.Concat(new[] { "--bogus" }).ToArray());
        CliAssert.OneClearFailure(r, 2);
        Assert.Contains("--bogus", r.Stderr);
        Assert.Contains("postmaster --help", r.Stderr);
        Assert.False(Directory.Exists(pm.DataDirectory));
    }

    [Theory]
    [InlineData("stop", "-m", "bogus", "invalid value for option \"--mode\": \"bogus\" (expected smart, fast or immediate)")]
    [InlineData("status", "--json=yes", null, "yes")]
    [InlineData("stop", "--no-wait=1", null, "1")]
    [InlineData("start", "--detach=true", null, "true")]
    public void Bad_values_of_other_options_are_usage_errors_without_type_names(string command, string option, string? value, string message)
    {
        using var pm = Clusters.Empty("badvalue");
        var args = value is null ? new[] { option } : new[] { option, value };
        var r = pm.Run(command, args);
        CliAssert.OneClearFailure(r, 2);
        Assert.Contains(message, r.Stderr);
    }

    public static IEnumerable<object[]> HelpCases() => Commands.Select(c => new object[] { c });

    [Theory]
    [MemberData(nameof(HelpCases))]
    public void Help_states_each_default_once_and_no_type_names(string command)
    {
        var r = PostmasterCli.Run(command, "--help");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.DoesNotContain("System.", r.Output);
        foreach (var line in r.Stdout.Split('\n'))
            Assert.False(line.Contains("(default: ") && line.Contains("[default: "), $"default stated twice: {line}");
        if (r.Stdout.Contains("--timeout"))
            Assert.Contains("[default: 60]", r.Stdout);
    }
}
