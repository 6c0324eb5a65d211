using Postmaster.Logging;
using Postmaster.Configuration;
using Xunit;
using static Postmaster.Tests.Configuration.ConfigAssert;

namespace Postmaster.Tests.Configuration;

public sealed class ValueParsingTests
{
    [Theory]
    [InlineData("0", 0L)]
    [InlineData("100", 100L)]
    [InlineData("1B", 1L)]
    [InlineData("1kB", 1024L)]
    [InlineData("8MB", 8L * 1024 * 1024)]
    [InlineData("1.5MB", 1_572_864L)]
    [InlineData("0.5kB", 512L)]
    [InlineData("2GB", 2L * 1024 * 1024 * 1024)]
    [InlineData("1TB", 1L << 40)]
    [InlineData("'8 MB'", 8L * 1024 * 1024)]
    [InlineData("+16kB", 16L * 1024)]
    [InlineData(".5kB", 512L)]
    [InlineData("1e3", 1000L)]
    [InlineData("0010", 10L)]
    [InlineData("1.5", 2L)]
    [InlineData("2.5", 2L)]
    [InlineData("3.5", 4L)]
    [InlineData("2.5001", 3L)]
    [InlineData("0.0001kB", 0L)]
    public void Size_units_convert_to_bytes_rounding_half_to_even(string text, long bytes)
    {
        Assert.Equal(bytes, LoadLine("shared_memory_size", text).SharedMemorySize);
    }

    [Theory]
    [InlineData("0", 0L)]
    [InlineData("250", 250L)]
    [InlineData("100ms", 100L)]
    [InlineData("1s", 1000L)]
    [InlineData("1.5s", 1500L)]
    [InlineData("2min", 120_000L)]
    [InlineData("1h", 3_600_000L)]
    [InlineData("1000us", 1L)]
    [InlineData("1500us", 2L)]
    [InlineData("2500us", 2L)]
    [InlineData("0.5min", 30_000L)]
    public void Time_units_convert_to_milliseconds(string text, long milliseconds)
    {
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), LoadLine("shutdown_kill_timeout", text).ShutdownKillTimeout);
    }

    [Fact]
    public void Day_unit_is_24_hours()
    {
        Assert.Equal(TimeSpan.FromDays(1), LoadLine("crash_restart_interval", "1d").CrashRestartInterval);
    }

    [Theory]
    [InlineData("1", 1)]
    [InlineData("10000", 10_000)]
    [InlineData("1.5", 2)]
    [InlineData("'  42  '", 42)]
    public void Integers_are_read_and_fractions_rounded(string text, int expected)
    {
        Assert.Equal(expected, LoadLine("max_backends", text).MaxBackends);
    }

    [Fact]
    public void Integer_above_the_maximum_names_value_parameter_range_and_place()
    {
        ConfigError error = SingleError("\n\nmax_backends = 300000\n");

        Assert.Equal(3, error.Line);
        Assert.Equal(
            $"300000 is outside the valid range for parameter \"max_backends\" (1 .. 10000) (file \"{FakePath}\" line 3)",
            error.Message);
    }

    [Theory]
    [InlineData("max_backends", "0", "0 is outside the valid range for parameter \"max_backends\" (1 .. 10000)")]
    [InlineData("max_backends", "-1", "-1 is outside the valid range for parameter \"max_backends\" (1 .. 10000)")]
    [InlineData("max_backends", "99999999999999999999999999999999999",
        "99999999999999999999999999999999999 is outside the valid range for parameter \"max_backends\" (1 .. 10000)")]
    [InlineData("max_backends", "1e40", "1e40 is outside the valid range")]
    [InlineData("shared_memory_size", "2TB",
        "2TB is outside the valid range for parameter \"shared_memory_size\" (0 .. 1TB)")]
    [InlineData("shared_memory_size", "9999999999999TB", "9999999999999TB is outside the valid range")]
    [InlineData("shared_memory_size", "-1kB", "-1kB is outside the valid range")]
    [InlineData("shutdown_kill_timeout", "2h",
        "2h is outside the valid range for parameter \"shutdown_kill_timeout\" (0 .. 1h)")]
    [InlineData("crash_restart_interval", "999ms",
        "999ms is outside the valid range for parameter \"crash_restart_interval\" (1s .. 1d)")]
    public void Out_of_range_values_are_rejected(string name, string value, string messageStart)
    {
        ConfigError error = SingleError($"{name} = {value}");

        Assert.StartsWith(messageStart, error.Message);
        Assert.EndsWith($"(file \"{FakePath}\" line 1)", error.Message);
    }

    [Fact]
    public void Unknown_unit_lists_the_valid_units()
    {
        ConfigError error = SingleError("shared_memory_size = 8KB");

        Assert.Equal(
            $"invalid unit \"KB\" for parameter \"shared_memory_size\": \"8KB\" (file \"{FakePath}\" line 1)", error.Message);
        Assert.Equal("Valid units for this parameter are \"B\", \"kB\", \"MB\", \"GB\", and \"TB\".", error.Hint);
    }

    [Fact]
    public void Unknown_time_unit_lists_the_valid_time_units()
    {
        ConfigError error = SingleError("shutdown_kill_timeout = 5sec");

        Assert.StartsWith("invalid unit \"sec\" for parameter \"shutdown_kill_timeout\"", error.Message);
        Assert.Equal("Valid units for this parameter are \"us\", \"ms\", \"s\", \"min\", \"h\", and \"d\".", error.Hint);
    }

    [Theory]
    [InlineData("max_backends", "10MB")]
    [InlineData("max_backends", "abc")]
    [InlineData("max_backends", "0x10")]
    [InlineData("max_backends", "''")]
    [InlineData("shared_memory_size", "MB")]
    [InlineData("shared_memory_size", "1.2.3MB")]
    [InlineData("shutdown_kill_timeout", "soon")]
    public void Non_numbers_are_invalid_values_with_the_range_in_the_hint(string name, string value)
    {
        ConfigError error = SingleError($"{name} = {value}");

        string shown = value == "''" ? "" : value;
        Assert.Equal($"invalid value for parameter \"{name}\": \"{shown}\" (file \"{FakePath}\" line 1)", error.Message);
        Assert.Contains(ValueFormatter.FormatRange(SettingCatalog.Get(name)), error.Hint);
    }

    [Theory]
    [InlineData("on", true)]
    [InlineData("off", false)]
    [InlineData("true", true)]
    [InlineData("false", false)]
    [InlineData("yes", true)]
    [InlineData("no", false)]
    [InlineData("1", true)]
    [InlineData("0", false)]
    [InlineData("t", true)]
    [InlineData("fal", false)]
    [InlineData("y", true)]
    [InlineData("n", false)]
    [InlineData("of", false)]
    [InlineData("ON", true)]
    [InlineData("'True'", true)]
    public void Booleans_accept_PostgreSQL_spellings_and_unique_prefixes(string text, bool expected)
    {
        Assert.Equal(expected, LoadLine("restart_after_crash", text).RestartAfterCrash);
    }

    [Theory]
    [InlineData("o")]
    [InlineData("maybe")]
    [InlineData("2")]
    [InlineData("onn")]
    [InlineData("''")]
    public void Bad_booleans_are_rejected_with_the_accepted_words(string text)
    {
        ConfigError error = SingleError($"restart_after_crash = {text}");

        Assert.StartsWith("invalid value for parameter \"restart_after_crash\"", error.Message);
        Assert.Equal("This parameter requires a Boolean value: on, off, true, false, yes, no, 1 or 0.", error.Hint);
    }

    [Fact]
    public void Enum_values_are_case_insensitive()
    {
        Settings settings = Load("shared_memory_type = POSIX\ndynamic_shared_memory_type = MMap\ncrash_recovery = restart_all");

        Assert.Equal(SharedMemoryType.Posix, settings.SharedMemoryType);
        Assert.Equal(DynamicSharedMemoryType.Mmap, settings.DynamicSharedMemoryType);
        Assert.Equal(CrashRecovery.RestartAll, settings.CrashRecovery);
    }

    [Fact]
    public void Bad_enum_value_lists_the_available_values()
    {
        ConfigError error = SingleError("\n\n\n\nhuge_pages = maybe");

        Assert.Equal($"invalid value for parameter \"huge_pages\": \"maybe\" (file \"{FakePath}\" line 5)", error.Message);
        Assert.Equal("Available values: off, try, on.", error.Hint);
    }

    [Fact]
    public void Empty_log_directory_is_rejected()
    {
        ConfigError error = SingleError("log_directory = ''");

        Assert.Equal($"invalid value for parameter \"log_directory\": \"\" (file \"{FakePath}\" line 1)", error.Message);
        Assert.Equal("This parameter must not be empty.", error.Hint);
    }

    [Fact]
    public void Log_levels_follow_the_server_log_order_where_log_ranks_above_error()
    {
        Assert.True(Severity.Log > Severity.Error);
        Assert.True(Severity.Fatal > Severity.Log);
        Assert.True(Severity.Debug1 > Severity.Debug5);
        Assert.Equal(Severity.Debug1, LoadLine("log_min_messages", "DEBUG1").LogMinMessages);
    }
}
