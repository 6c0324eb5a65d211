using Postmaster.Configuration;
using Xunit;

namespace Postmaster.Tests.Configuration;

/// <summary>Shortcuts for loading configuration text and checking the errors it produces.</summary>
internal static class ConfigAssert
{
    /// <summary>A file path used in messages when text is parsed without a file.</summary>
    public const string FakePath = "/x/postmaster.conf";

    public static Settings Load(string text, params string[] overrides) =>
        ConfigLoader.LoadText(text, FakePath, overrides);

    /// <summary>Loads one <c>name = value</c> line.</summary>
    public static Settings LoadLine(string name, string value) => Load($"{name} = {value}\n");

    /// <summary>Loading must fail; returns every error.</summary>
    public static IReadOnlyList<ConfigError> Errors(string text, params string[] overrides) =>
        Assert.Throws<ConfigException>(() => Load(text, overrides)).Errors;

    /// <summary>Loading must fail with exactly one error; returns it.</summary>
    public static ConfigError SingleError(string text, params string[] overrides) =>
        Assert.Single(Errors(text, overrides));
}
