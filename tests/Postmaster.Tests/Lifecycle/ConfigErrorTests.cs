using Postmaster.Tests.Support;
using Xunit;

namespace Postmaster.Tests.Lifecycle;

/// <summary>Bad configuration stops startup with file:line, the allowed values, and loses nothing.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class ConfigErrorTests
{
    [Theory]
    [InlineData("shared_memroy_type = posix", "unrecognized configuration parameter \"shared_memroy_type\"", "Did you mean \"shared_memory_type\"?")]
    [InlineData("shared_memory_size = 8KB", "invalid unit \"KB\"", "\"kB\"")]
    [InlineData("max_backends = 300000", "300000 is outside the valid range for parameter \"max_backends\" (1 .. 10000)", null)]
    [InlineData("log_directory = 'unterminated", "syntax error in file", "Unterminated quoted string")]
    [InlineData("huge_pages = maybe", "invalid value for parameter \"huge_pages\": \"maybe\"", "off, try, on")]
    public void Start_refuses_a_bad_configuration_naming_file_and_line(string line, string message, string? hint)
    {
        using var pm = Clusters.Defaults("badconf");
        int lineNo = File.ReadAllLines(pm.ConfigPath).Length + 1;
        File.AppendAllLines(pm.ConfigPath, [line]);
        var r = pm.Run("start");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(message, r.Stderr);
        Assert.Contains($"\"{pm.ConfigPath}\" line {lineNo}", r.Stderr);
        if (hint is not null)
            Assert.Contains(hint, r.Stderr);
        Assert.Contains($"FATAL:  configuration file \"{pm.ConfigPath}\" contains errors", r.Stderr);
        Assert.False(File.Exists(Path.Combine(pm.DataDirectory, "postmaster.pid")));
    }

    [Fact]
    public void Detached_start_with_a_bad_configuration_shows_the_error_and_exits_1()
    {
        using var pm = Clusters.Defaults("badconf-detached");
        File.AppendAllLines(pm.ConfigPath, ["max_backends = lots"]);
        var r = pm.TryStart();
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("could not start server", r.Stderr);
        Assert.Contains("invalid value for parameter \"max_backends\": \"lots\"", r.Stderr);
    }

    [Fact]
    public void Bad_command_line_setting_names_the_option()
    {
        using var pm = Clusters.Empty("badc");
        var r = pm.Run("start", "-c", "max_backends=0");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("0 is outside the valid range for parameter \"max_backends\"", r.Stderr);
        Assert.Contains("-c max_backends=0", r.Stderr);
    }
}
