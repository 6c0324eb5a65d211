using System.Text.RegularExpressions;
using Postmaster.Testing;
using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Cli;

/// <summary>What every CLI failure must look like: one "postmaster: ..." line first, optional DETAIL/HINT lines (never
/// an empty one), no stack trace, no .NET type names or resource keys.</summary>
public static partial class CliAssert
{
    [GeneratedRegex(@"\b[A-Z][A-Za-z]+_[A-Z][A-Za-z]+(_[A-Za-z]+)*\b")]
    private static partial Regex ResourceKey();

    [GeneratedRegex(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ UTC \[\d+\] [A-Z0-9]+:  ")]
    private static partial Regex LogLine();

    /// <summary>A foreground <c>start</c> is the server itself: its output is its log (PostgreSQL's format), so its
    /// failure is a FATAL log line rather than a "postmaster: " line; the rest of the rules hold.</summary>
    public static void ClearServerFailure(CliResult r)
    {
        Assert.True(r.ExitCode == 1, r.ToString());
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.Contains("] FATAL:  ", StringComparison.Ordinal) || l.StartsWith("postmaster: ", StringComparison.Ordinal));
        Assert.All(lines, l => Assert.True(LogLine().IsMatch(l) || l.StartsWith("postmaster: ", StringComparison.Ordinal), $"not a log line: {l}\n{r}"));
        Assert.DoesNotContain("Exception", r.Output);
        Assert.DoesNotContain("System.", r.Output);
        Assert.DoesNotMatch(ResourceKey(), r.Output);
    }

    public static void OneClearFailure(CliResult r, params int[] exitCodes)
    {
        Assert.True(exitCodes.Contains(r.ExitCode), $"exit code {r.ExitCode} is not one of {string.Join(", ", exitCodes)}\n{r}");
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length > 0, $"no message on stderr\n{r}");
        Assert.StartsWith("postmaster: ", lines[0]);
        Assert.DoesNotContain(lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
        Assert.DoesNotContain("Exception", r.Output);
        Assert.DoesNotContain("System.", r.Output);
        Assert.DoesNotMatch(ResourceKey(), r.Output);
        Assert.DoesNotContain(lines, l => l.Trim() is "DETAIL:" or "HINT:");
    }
}
