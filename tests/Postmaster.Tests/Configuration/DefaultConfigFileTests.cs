using Postmaster.Configuration;
using Xunit;

namespace Postmaster.Tests.Configuration;

public sealed class DefaultConfigFileTests : IDisposable
{
    private const int MaxLineLength = 140;

    private readonly TempConfigDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void Rendered_file_loads_to_the_defaults_plus_the_demo_worker()
    {
        Settings settings = ConfigLoader.Load(_directory.Write(DefaultConfigFile.Render()), []);

        Settings defaults = Settings.CreateDefault();
        Assert.All(SettingCatalog.All,
            definition => Assert.Equal(defaults.Get(definition.Name).Display, settings.Get(definition.Name).Display));
        WorkerSettings demo = Assert.Single(settings.Workers).Value;
        Assert.Equal(DefaultConfigFile.DemoWorkerName, demo.Name);
        Assert.Equal(DefaultConfigFile.DemoWorkerEntry, demo.Entry);
        Assert.Equal(DefaultConfigFile.DemoWorkerCount, demo.Count);
        Assert.Equal(DefaultConfigFile.DemoWorkerRestart, demo.Restart);
    }

    [Fact]
    public void Every_setting_is_listed_commented_out_with_its_default()
    {
        string[] lines = DefaultConfigFile.Render().Split('\n');

        foreach (SettingDefinition definition in SettingCatalog.All.Concat(WorkerSettingCatalog.Attributes))
        {
            Assert.Single(lines, line => line.StartsWith($"#{definition.Name} = ", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Uncommenting_every_fixed_setting_keeps_the_defaults()
    {
        string uncommented = string.Join('\n', DefaultConfigFile.Render().Split('\n')
            .Where(line => !line.StartsWith("#worker.", StringComparison.Ordinal))
            .Select(line => line.StartsWith('#') && line.Length > 1 && char.IsAsciiLetterLower(line[1]) ? line[1..] : line));

        Settings settings = ConfigLoader.Load(_directory.Write(uncommented), []);

        Assert.All(SettingCatalog.All, definition =>
        {
            EffectiveSetting setting = settings.Get(definition.Name);
            Assert.Equal(SettingSourceKind.File, setting.Source.Kind);
            Assert.Equal(Settings.CreateDefault().Get(definition.Name).Display, setting.Display);
        });
    }

    [Fact]
    public void Restart_only_settings_are_marked()
    {
        string text = DefaultConfigFile.Render();

        int restartOnly = SettingCatalog.All.Count(definition => definition.Context == SettingContext.Restart);
        Assert.Equal(restartOnly, text.Split('\n').Count(line => line.Trim() == "# (change requires restart)"));
    }

    [Fact]
    public void Rendered_lines_fit_the_line_length_limit_and_end_with_LF()
    {
        string text = DefaultConfigFile.Render();

        Assert.DoesNotContain('\r', text);
        Assert.EndsWith("\n", text);
        Assert.All(text.Split('\n'), line => Assert.True(line.Length <= MaxLineLength, line));
    }

    [Fact]
    public void Repository_config_file_is_the_rendered_default()
    {
        string path = Path.Combine(RepositoryRoot.Path, "config", ConfigLoader.FileName);
        if (GeneratedFiles.UpdateRequested)
        {
            File.WriteAllText(path, DefaultConfigFile.Render());
        }

        Assert.Equal(DefaultConfigFile.Render(), File.ReadAllText(path));
    }
}
