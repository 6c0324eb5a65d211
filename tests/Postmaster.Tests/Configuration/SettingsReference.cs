using System.Text;
using Postmaster.Configuration;

namespace Postmaster.Tests.Configuration;

/// <summary>Generates the settings reference section of docs/configuration.md from the catalogue.</summary>
internal static class SettingsReference
{
    public const string BeginMarker = "<!-- BEGIN GENERATED SETTINGS REFERENCE (DocumentationTests) -->";
    public const string EndMarker = "<!-- END GENERATED SETTINGS REFERENCE -->";

    public static string Render()
    {
        var text = new StringBuilder();
        text.Append(BeginMarker).Append('\n');
        foreach (SettingGroup group in Enum.GetValues<SettingGroup>())
        {
            IEnumerable<SettingDefinition> definitions = group == SettingGroup.Workers
                ? WorkerSettingCatalog.Attributes
                : SettingCatalog.All.Where(definition => definition.Group == group);
            text.Append('\n').Append("### ").Append(SettingCatalog.GroupTitle(group)).Append("\n\n");
            text.Append("| Name | Type | Default | Range or values | Changes on | Description |\n");
            text.Append("|---|---|---|---|---|---|\n");
            foreach (SettingDefinition definition in definitions)
            {
                text.Append($"| `{definition.Name}` | {TypeText(definition)} | {DefaultText(definition)} | "
                    + $"{LimitsText(definition)} | {ContextText(definition)} | {definition.Description} |\n");
            }

            List<SettingDefinition> documented = definitions.Where(definition => definition.Documentation.Length > 0).ToList();
            if (documented.Count > 0)
            {
                text.Append('\n');
            }

            foreach (SettingDefinition definition in documented)
            {
                text.Append($"- `{definition.Name}`: {definition.Documentation}\n");
            }
        }

        text.Append('\n').Append(EndMarker);
        return text.ToString();
    }

    private static string TypeText(SettingDefinition definition) => definition.Kind switch
    {
        SettingKind.Size => "size (bytes)",
        SettingKind.Time => "time (ms)",
        _ => definition.Kind.ToString().ToLowerInvariant(),
    };

    private static string DefaultText(SettingDefinition definition) => definition.DefaultText switch
    {
        null => "(required)",
        "" => "`''`",
        string text => $"`{ValueFormatter.ToFileSyntax(definition, text)}`",
    };

    private static string LimitsText(SettingDefinition definition) => definition.Kind switch
    {
        SettingKind.Int or SettingKind.Size or SettingKind.Time => ValueFormatter.FormatRange(definition),
        SettingKind.Enum => string.Join(", ", definition.AllowedValues.Select(value => $"`{value}`")),
        SettingKind.Bool => "on, off",
        _ => definition.AllowEmpty ? "any text" : "non-empty text",
    };

    private static string ContextText(SettingDefinition definition) =>
        definition.Context == SettingContext.Restart ? "restart" : "reload";
}
