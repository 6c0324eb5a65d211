using Postmaster.Shmem.Backends;
using Postmaster.Shmem.Os;
using Xunit;

namespace Postmaster.Tests.Units;

/// <summary>The argument a connection backend is started with: what the postmaster formats, the backend reads back,
/// and anything else is refused (the backend then exits with a FATAL instead of guessing).</summary>
public sealed class ConnectionHostArgumentTests
{
    [Theory]
    [InlineData(true, 1, "/opt/my app/Kv.dll:Kv.Server", "")]
    [InlineData(false, 64, "/w.dll:W", "a b  c")]
    public void What_is_formatted_reads_back(bool batch, int concurrent, string entry, string argument)
    {
        var policy = batch ? CpuSchedulingPolicy.Batch : CpuSchedulingPolicy.Other;
        string text = ConnectionHostArgument.Format("\0postmaster.12.AB", 7, concurrent, policy, entry, argument);
        Assert.True(ConnectionHostArgument.TryParse(text, out string channel, out int maxSessions, out int parsedConcurrent,
            out var parsedPolicy, out string parsedEntry, out string parsedArgument));
        Assert.Equal(("\0postmaster.12.AB", 7, concurrent, policy, entry, argument),
            (channel, maxSessions, parsedConcurrent, parsedPolicy, parsedEntry, parsedArgument));
    }

    [Theory]
    [InlineData("")]
    [InlineData("chan 0 batch 8 /w.dll:W ")] // the old shape, without the sessions at once
    [InlineData("chan 0 1 fifo 8 /w.dll:W ")] // not a policy a backend may take
    [InlineData("chan -1 1 batch 8 /w.dll:W ")]
    [InlineData("chan 0 0 batch 8 /w.dll:W ")] // no session at once
    [InlineData("chan 0 1 batch 99 /w.dll:W ")] // the entry's length runs past the text
    [InlineData(" 0 1 batch 8 /w.dll:W ")] // no channel
    public void Anything_else_is_refused(string text) =>
        Assert.False(ConnectionHostArgument.TryParse(text, out _, out _, out _, out _, out _, out _));
}
