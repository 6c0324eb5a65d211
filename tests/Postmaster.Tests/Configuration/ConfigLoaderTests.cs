using Postmaster.Logging;
using Postmaster.Configuration;
using Xunit;

namespace Postmaster.Tests.Configuration;

public sealed class ConfigLoaderTests : IDisposable
{
    private readonly TempConfigDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void File_values_are_loaded_with_their_sources()
    {
        string path = _directory.WriteLines(
            "# settings",
            "max_backends = 50",
            "shared_memory_size = 64MB");

        Settings settings = ConfigLoader.Load(path, []);

        Assert.Equal(50, settings.MaxBackends);
        Assert.Equal(64L * SettingUnits.Megabyte, settings.SharedMemorySize);
        Assert.Equal($"file \"{path}\" line 2", settings.Get("max_backends").Source.Location);
        Assert.Equal(SettingSource.Default, settings.Get("huge_pages").Source);
    }

    [Fact]
    public void Missing_file_is_an_error()
    {
        ConfigException exception = Assert.Throws<ConfigException>(() => ConfigLoader.Load(_directory.ConfigPath, []));

        ConfigError error = Assert.Single(exception.Errors);
        Assert.Equal(
            $"could not open configuration file \"{_directory.ConfigPath}\": No such file or directory", error.Message);
        Assert.Equal(ConfigError.NoLine, error.Line);
        Assert.Equal(error.Message, exception.Message);
    }

    [Fact]
    public void Missing_directory_is_an_error()
    {
        string path = Path.Combine(_directory.Path, "absent", ConfigLoader.FileName);

        ConfigException exception = Assert.Throws<ConfigException>(() => ConfigLoader.Load(path, []));

        Assert.EndsWith("No such file or directory", Assert.Single(exception.Errors).Message);
    }

    [Fact]
    public void Directory_instead_of_file_is_an_error()
    {
        ConfigException exception = Assert.Throws<ConfigException>(() => ConfigLoader.Load(_directory.Path, []));

        Assert.EndsWith("Is a directory", Assert.Single(exception.Errors).Message);
    }

    [Fact]
    public void Unknown_parameter_suggests_the_closest_name()
    {
        string path = _directory.WriteLines("max_backends = 5", "", "shared_memroy_type = posix");

        ConfigException exception = Assert.Throws<ConfigException>(() => ConfigLoader.Load(path, []));

        ConfigError error = Assert.Single(exception.Errors);
        Assert.Equal((path, 3), (error.File, error.Line));
        Assert.Equal($"unrecognized configuration parameter \"shared_memroy_type\" in file \"{path}\" line 3", error.Message);
        Assert.Equal("Did you mean \"shared_memory_type\"?", error.Hint);
    }

    [Fact]
    public void Unknown_parameter_far_from_every_name_gets_no_suggestion()
    {
        ConfigError error = ConfigAssert.SingleError("colour = blue");

        Assert.Equal($"unrecognized configuration parameter \"colour\" in file \"{ConfigAssert.FakePath}\" line 1",
            error.Message);
        Assert.Null(error.Hint);
    }

    [Fact]
    public void All_errors_of_a_file_are_reported_together_in_line_order()
    {
        string path = _directory.WriteLines(
            "max_backends = 50",
            "huge_pages = maybe",
            "log_directory = 'open",
            "# fine",
            "max_backendz = 5",
            "worker.w.count = 3",
            "shared_memory_size = 8KB",
            "restart_after_crash = perhaps");

        ConfigException exception = Assert.Throws<ConfigException>(() => ConfigLoader.Load(path, ["max_backends=0"]));

        Assert.Equal([2, 3, 5, 6, 7, 8, ConfigError.NoLine], exception.Errors.Select(error => error.Line));
        Assert.All(exception.Errors.SkipLast(1), error => Assert.Equal(path, error.File));
        Assert.Equal("-c max_backends=0", exception.Errors[^1].File);
        Assert.StartsWith("7 errors in configuration:", exception.Message);
        Assert.All(exception.Errors, error => Assert.Contains(error.Message, exception.Message));
        Assert.Contains("HINT:  Available values: off, try, on.", exception.Message);
    }

    [Fact]
    public void Command_line_overrides_win_over_the_file()
    {
        string path = _directory.WriteLines("max_backends = 50", "log_min_messages = warning");

        Settings settings = ConfigLoader.Load(path, ["max_backends=70", "LOG_MIN_MESSAGES=debug2", "max_backends=80"]);

        Assert.Equal(80, settings.MaxBackends);
        Assert.Equal(Severity.Debug2, settings.LogMinMessages);
        Assert.Equal("command line option \"-c max_backends=80\"", settings.Get("max_backends").Source.Location);
        Assert.Equal(SettingSourceKind.CommandLine, settings.Get("max_backends").Source.Kind);
    }

    [Fact]
    public void Command_line_value_is_taken_literally()
    {
        Settings settings = ConfigAssert.Load("", "log_directory='quoted dir' # not a comment", " max_backends = 7");

        Assert.Equal("'quoted dir' # not a comment", settings.LogDirectory);
        Assert.Equal(7, settings.MaxBackends);
    }

    [Fact]
    public void Command_line_value_error_names_the_option()
    {
        ConfigError error = ConfigAssert.SingleError("", "huge_pages=maybe");

        Assert.Equal("-c huge_pages=maybe", error.File);
        Assert.Equal(ConfigError.NoLine, error.Line);
        Assert.Equal("invalid value for parameter \"huge_pages\": \"maybe\" (command line option \"-c huge_pages=maybe\")",
            error.Message);
    }

    [Fact]
    public void Command_line_unknown_parameter_suggests_the_closest_name()
    {
        ConfigError error = ConfigAssert.SingleError("", "max_backend=5");

        Assert.Equal("unrecognized configuration parameter \"max_backend\" in command line option \"-c max_backend=5\"",
            error.Message);
        Assert.Equal("Did you mean \"max_backends\"?", error.Hint);
    }

    [Fact]
    public void Command_line_option_without_value_is_rejected()
    {
        ConfigError error = ConfigAssert.SingleError("", "max_backends");

        Assert.Equal("missing value for parameter \"max_backends\" in command line option \"-c max_backends\"",
            error.Message);
        Assert.Equal("Use -c name=value.", error.Hint);
    }

    [Theory]
    [InlineData("=5")]
    [InlineData("  =5")]
    [InlineData("")]
    public void Command_line_option_without_name_is_a_syntax_error(string assignment)
    {
        ConfigError error = ConfigAssert.SingleError("", assignment);

        Assert.Equal($"syntax error in command line option \"-c {assignment}\", missing parameter name", error.Message);
    }

    [Fact]
    public void Relative_config_path_is_reported_as_a_full_path()
    {
        string relative = Path.GetRelativePath(Environment.CurrentDirectory, _directory.WriteLines("huge_pages = maybe"));

        ConfigException exception = Assert.Throws<ConfigException>(() => ConfigLoader.Load(relative, []));

        Assert.Equal(_directory.ConfigPath, Assert.Single(exception.Errors).File);
    }
}
