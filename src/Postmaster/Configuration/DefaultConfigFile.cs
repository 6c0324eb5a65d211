using System.Text;

namespace Postmaster.Configuration;

/// <summary>
/// Writes the commented default <c>postmaster.conf</c> that <c>init</c> puts in a new data directory (and that the
/// repository keeps as <c>config/postmaster.conf</c>). Every setting of the catalogue appears commented out with its
/// default, description and range, grouped in sections like <c>postgresql.conf</c>; a small demonstration worker is the
/// only active part. The text always uses LF line ends.
/// </summary>
public static class DefaultConfigFile
{
    public const string DemoWorkerName = "demo";
    public const string DemoWorkerEntry = "demo";
    public const int DemoWorkerCount = 2;
    public const RestartPolicy DemoWorkerRestart = RestartPolicy.OnFailure;

    /// <summary>Column at which the explanatory comment of a setting starts.</summary>
    private const int CommentColumn = 40;

    /// <summary>Shown as the value of the required <c>worker.NAME.entry</c>, which has no default.</summary>
    private const string RequiredValueExample = "idle";

    private const string Rule = "#------------------------------------------------------------------------------";

    private static readonly string[] s_header =
    [
        "# -----------------------------",
        "# postmaster configuration file",
        "# -----------------------------",
        "#",
        "# This file consists of lines of the form:",
        "#",
        "#   name = value",
        "#",
        "# (The \"=\" is optional.)  Whitespace may be used.  Comments are introduced with",
        "# \"#\" anywhere on a line.  Names are case-insensitive.  Values that contain",
        "# spaces or special characters must be single-quoted.  The complete list of",
        "# parameters is in docs/configuration.md.",
        "#",
        "# The commented-out settings below show the default values.  If a name appears",
        "# more than once, the last value wins.  Values given with -c name=value on the",
        "# command line override this file.",
        "#",
        "# This file is read at server start and when the server receives SIGHUP.",
        "# Settings marked \"(change requires restart)\" keep their value until the",
        "# server restarts; the others change on SIGHUP.",
        "#",
        "# Memory units:  B  = bytes            Time units:  us  = microseconds",
        "#                kB = kilobytes                     ms  = milliseconds",
        "#                MB = megabytes                     s   = seconds",
        "#                GB = gigabytes                     min = minutes",
        "#                TB = terabytes                     h   = hours",
        "#                                                   d   = days",
        "#",
        "# A size without a unit is in bytes; a time without a unit is in milliseconds.",
    ];

    private static readonly string[] s_workerIntroduction =
    [
        "# A worker is a group of worker.NAME.* settings; it exists when",
        "# worker.NAME.entry is set.  NAME is case-insensitive and matches",
        $"# {WorkerSettingCatalog.WorkerNamePattern}.  Every worker setting changes on SIGHUP.",
    ];

    /// <summary>The complete text of the default configuration file.</summary>
    public static string Render()
    {
        var lines = new List<string>(s_header);
        foreach (SettingGroup group in Enum.GetValues<SettingGroup>())
        {
            lines.Add("");
            lines.Add("");
            lines.Add(Rule);
            lines.Add("# " + SettingCatalog.GroupTitle(group).ToUpperInvariant());
            lines.Add(Rule);
            lines.Add("");
            if (group == SettingGroup.Workers)
            {
                lines.AddRange(s_workerIntroduction);
                lines.Add("");
                WorkerSettingCatalog.Attributes.ToList().ForEach(definition => AddSetting(lines, definition));
                AddDemoWorker(lines);
            }
            else
            {
                SettingCatalog.All.Where(definition => definition.Group == group).ToList()
                    .ForEach(definition => AddSetting(lines, definition));
            }
        }

        var text = new StringBuilder();
        lines.ForEach(line => text.Append(line).Append('\n'));
        return text.ToString();
    }

    private static void AddSetting(List<string> lines, SettingDefinition definition)
    {
        string value = ValueFormatter.ToFileSyntax(definition, definition.DefaultText ?? RequiredValueExample);
        string assignment = $"#{definition.Name} = {value}";
        string indent = new(' ', CommentColumn);
        lines.Add(assignment.PadRight(CommentColumn - 1) + " # " + definition.Description);
        string? limits = Limits(definition);
        if (limits is not null)
        {
            lines.Add(indent + "# " + limits);
        }

        if (definition.IsRequired)
        {
            lines.Add(indent + "# (required: no default)");
        }

        if (definition.Context == SettingContext.Restart)
        {
            lines.Add(indent + "# (change requires restart)");
        }
    }

    private static string? Limits(SettingDefinition definition) => definition.Kind switch
    {
        SettingKind.Int or SettingKind.Size or SettingKind.Time => "range " + ValueFormatter.FormatRange(definition),
        SettingKind.Enum => "values: " + ValueFormatter.FormatAllowedValues(definition),
        SettingKind.Bool => "on or off",
        SettingKind.String => null,
        _ => throw new InvalidOperationException($"internal error: unknown setting kind {definition.Kind}"),
    };

    private static void AddDemoWorker(List<string> lines)
    {
        SettingDefinition restart = WorkerSettingCatalog.GetAttribute(WorkerSettingCatalog.Restart);
        lines.Add("");
        lines.Add("# A demonstration worker:");
        lines.Add(Assignment(WorkerSettingCatalog.Entry, ValueFormatter.Quote(DemoWorkerEntry)));
        lines.Add(Assignment(WorkerSettingCatalog.Count, DemoWorkerCount.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        lines.Add(Assignment(WorkerSettingCatalog.Restart, restart.AllowedValues[(int)DemoWorkerRestart]));
    }

    private static string Assignment(string attribute, string value) =>
        $"{WorkerSettingCatalog.FullName(DemoWorkerName, attribute)} = {value}";
}
