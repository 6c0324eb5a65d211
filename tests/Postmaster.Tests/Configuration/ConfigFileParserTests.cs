using Postmaster.Configuration;
using Xunit;
using static Postmaster.Tests.Configuration.ConfigAssert;

namespace Postmaster.Tests.Configuration;

public sealed class ConfigFileParserTests
{
    [Fact]
    public void Comments_blank_lines_and_trailing_comments_are_ignored()
    {
        Settings settings = Load("""
            # a comment line

               # indented comment
            max_backends = 50   # trailing comment
            huge_pages = off#comment right after the value
            """);

        Assert.Equal(50, settings.MaxBackends);
        Assert.Equal(HugePages.Off, settings.HugePages);
    }

    [Theory]
    [InlineData("max_backends = 50")]
    [InlineData("max_backends=50")]
    [InlineData("max_backends 50")]
    [InlineData("\tmax_backends\t=\t50\t")]
    [InlineData("MAX_Backends = 50")]
    [InlineData("max_backends = '50'")]
    public void Assignment_forms_are_accepted(string line)
    {
        Assert.Equal(50, Load(line).MaxBackends);
    }

    [Fact]
    public void Crlf_line_ends_are_accepted()
    {
        Settings settings = Load("max_backends = 50\r\nhuge_pages = on\r\n");

        Assert.Equal(50, settings.MaxBackends);
        Assert.Equal(HugePages.On, settings.HugePages);
    }

    [Theory]
    [InlineData(@"'it''s'", "it's")]
    [InlineData(@"'it\'s'", "it's")]
    [InlineData(@"'a\\b'", @"a\b")]
    [InlineData(@"'tab\there'", "tab\there")]
    [InlineData(@"'\n\r\b\f'", "\n\r\b\f")]
    [InlineData(@"'\101\60x'", "A0x")]
    [InlineData(@"'\q'", "q")]
    [InlineData(@"'with # hash'", "with # hash")]
    [InlineData(@"'  spaces  '", "  spaces  ")]
    [InlineData(@"/var/log/postmaster", "/var/log/postmaster")]
    [InlineData(@"logs-2.0", "logs-2.0")]
    public void Quoted_and_bare_strings_are_read_with_escapes(string written, string expected)
    {
        Assert.Equal(expected, LoadLine("log_directory", written).LogDirectory);
    }

    [Fact]
    public void Empty_quoted_string_is_a_value()
    {
        Settings settings = Load("worker.w.entry = idle\nworker.w.argument = ''\n");

        Assert.Equal("", settings.Workers["w"].Argument);
    }

    [Fact]
    public void Duplicate_setting_last_one_wins_and_reports_its_line()
    {
        Settings settings = Load("max_backends = 10\nmax_backends = 20\n\nmax_backends = 30\n");

        Assert.Equal(30, settings.MaxBackends);
        Assert.Equal(SettingSource.FromFile(FakePath, 4), settings.Get("max_backends").Source);
    }

    [Fact]
    public void Unterminated_quoted_string_is_a_syntax_error_that_says_so()
    {
        ConfigError error = SingleError("max_backends = 5\n\nlog_directory = 'abc\n");

        Assert.Equal(FakePath, error.File);
        Assert.Equal(3, error.Line);
        Assert.Equal(
            $"syntax error in file \"{FakePath}\" line 3, near token \"'abc\" (parameter \"log_directory\")",
            error.Message);
        Assert.Contains("Unterminated quoted string", error.Hint);
    }

    [Fact]
    public void Backslash_at_end_of_line_leaves_the_string_unterminated()
    {
        ConfigError error = SingleError(@"log_directory = 'abc\");

        Assert.Contains("Unterminated quoted string", error.Hint);
    }

    [Fact]
    public void Missing_value_is_a_syntax_error_near_end_of_line()
    {
        ConfigError error = SingleError("max_backends =   # nothing\n");

        Assert.Equal(
            $"syntax error in file \"{FakePath}\" line 1, near end of line (parameter \"max_backends\")", error.Message);
        Assert.NotNull(error.Hint);
    }

    [Theory]
    [InlineData("max_backends = 5 6", "6")]
    [InlineData("log_directory = 'a' 'b'", "'b'")]
    [InlineData("log_directory = a b", "b")]
    [InlineData("log_directory = $HOME", "$")]
    [InlineData("max_backends == 5", "=")]
    [InlineData("max_backends$ = 5", "$")]
    public void Unexpected_token_is_a_syntax_error_naming_the_token(string line, string token)
    {
        ConfigError error = SingleError(line);

        Assert.StartsWith($"syntax error in file \"{FakePath}\" line 1, near token \"{token}\"", error.Message);
    }

    [Theory]
    [InlineData("= 5", "=")]
    [InlineData("9lives = 5", "9lives")]
    [InlineData("'quoted' = 5", "'quoted'")]
    public void Line_not_starting_with_a_name_is_a_syntax_error(string line, string token)
    {
        ConfigError error = SingleError(line);

        Assert.Equal($"syntax error in file \"{FakePath}\" line 1, near token \"{token}\"", error.Message);
    }

    [Theory]
    [InlineData("\0")]
    [InlineData("'")]
    [InlineData("\\")]
    [InlineData("= = =")]
    [InlineData("a = '\\")]
    [InlineData("worker. = 1")]
    [InlineData("worker.. = 1")]
    [InlineData("worker.a. = 1")]
    [InlineData("worker.x.y.z.count = 1")]
    [InlineData("max_backends = 1e99999")]
    [InlineData("shared_memory_size = -99999999999999999999999999999999999TB")]
    [InlineData("shutdown_kill_timeout = 0.0000000000000000000000000001us")]
    [InlineData("nämlich = 1")]
    [InlineData("huge_pages = 'on\u2028'")]
    public void Garbage_input_never_throws_anything_but_ConfigException(string text)
    {
        Exception? exception = Record.Exception(() => Load(text));

        Assert.True(exception is null or ConfigException, $"unexpected {exception?.GetType()}: {exception?.Message}");
    }
}
