using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace Postmaster.Configuration;

/// <summary>
/// The <c>worker.NAME.*</c> setting family. A worker exists when the configuration has a <c>worker.NAME.entry</c>
/// line; its other attributes are optional and take the defaults below. Worker names are case-insensitive (stored in
/// lower case) and match <see cref="WorkerNamePattern"/>. Every worker setting can be changed by a reload.
/// </summary>
public static partial class WorkerSettingCatalog
{
    /// <summary>First segment of every worker setting name.</summary>
    public const string Prefix = "worker";

    /// <summary>Placeholder for the worker name in the template names of <see cref="Attributes"/>.</summary>
    public const string NamePlaceholder = "NAME";

    /// <summary>Longest worker name: a first character and up to 62 more.</summary>
    public const int MaxWorkerNameLength = 63;

    /// <summary>The rule for worker names, as shown in error hints.</summary>
    public const string WorkerNamePattern = "[A-Za-z_][A-Za-z0-9_-]{0,62}";

    public const string Entry = "entry";
    public const string Count = "count";
    public const string Argument = "argument";
    public const string Restart = "restart";
    public const string RestartDelay = "restart_delay";
    public const string RestartDelayMax = "restart_delay_max";
    public const string StablePeriod = "stable_period";
    public const string RestartLimit = "restart_limit";
    public const string Globalization = "globalization";

    /// <summary>Longest entry and argument in UTF-8 bytes: what a backend slot holds.</summary>
    public const int MaxEntryBytes = 255;
    public const int MaxArgumentBytes = 1023;

    /// <summary>Longest name of one instance (<c>NAME</c> or <c>NAME.N</c> for count &gt; 1) in bytes.</summary>
    public const int MaxInstanceNameLength = 63;

    private const char Separator = '.';
    private const int MaxWorkerCount = 10_000;

    /// <summary>Every worker attribute, in display order, with template names such as <c>worker.NAME.count</c>.</summary>
    public static IReadOnlyList<SettingDefinition> Attributes { get; } =
    [
        Define(Entry, SettingKind.String, defaultText: null, allowEmpty: false, maxBytes: MaxEntryBytes,
            description: "what the worker runs: 'idle' or 'path/to/Assembly.dll:Namespace.Type'",
            documentation: "Required: a worker exists only when this line exists. The supervisor decides which values it "
                + "accepts; a bare word such as `idle` names a built-in worker, `path/to/Assembly.dll:Namespace.Type` "
                + "names a type in an assembly."),
        Define(Count, SettingKind.Int, defaultText: "1", min: 1, max: MaxWorkerCount,
            description: "number of processes of this worker"),
        Define(Argument, SettingKind.String, defaultText: "", maxBytes: MaxArgumentBytes,
            description: "free text passed to each process of this worker"),
        Define(Restart, SettingKind.Enum, defaultText: "on-failure", allowedValues: ["never", "on-failure", "always"],
            description: "when an exited process is started again",
            documentation: "`on-failure` restarts after a non-zero exit status or a signal; `always` also after exit "
                + "status 0."),
        Define(RestartDelay, SettingKind.Time, defaultText: "1s", min: 0, max: SettingUnits.Hour,
            description: "initial wait before an exited process is restarted"),
        Define(RestartDelayMax, SettingKind.Time, defaultText: "60s", min: 0, max: SettingUnits.Day,
            description: "longest wait between restarts when backing off; not less than restart_delay"),
        Define(StablePeriod, SettingKind.Time, defaultText: "30s", min: 0, max: SettingUnits.Day,
            description: "run time after which a process counts as stable again (back-off resets)"),
        Define(RestartLimit, SettingKind.Int, defaultText: "10", min: 0, max: 1_000_000,
            description: "restarts after consecutive failures before the worker is given up (0 = never give up)",
            documentation: "The worker is restarted at most this many times in a row after failed runs (runs shorter "
                + "than stable_period; a start that fails before any process exists counts too); the next failure "
                + "gives it up: logged once, `failed` in `status`, started again with `postmaster start-worker`."),
        Define(Globalization, SettingKind.Enum, defaultText: "invariant", allowedValues: ["invariant", "icu"],
            description: "the worker's .NET globalization: 'invariant' or 'icu' (full cultures)",
            documentation: "`invariant` (the default) runs the backend with .NET's invariant globalization: no ICU is "
                + "loaded and only the invariant culture exists, so `CultureInfo.GetCultureInfo(\"de-DE\")` throws "
                + "`CultureNotFoundException`. `icu` loads the system's ICU library (Debian: `libicu72`) for real "
                + "cultures; it costs start-up time and memory (see docs/benchmarks.md) and such a worker always gets a "
                + "fresh process, never a pool member (pool members start before they know their worker)."),
    ];

    private static readonly Dictionary<string, SettingDefinition> s_byAttribute =
        Attributes.ToDictionary(definition => AttributeOf(definition), StringComparer.Ordinal);

    /// <summary>The attribute part of a template name: <c>count</c> for <c>worker.NAME.count</c>.</summary>
    public static string AttributeOf(SettingDefinition template) =>
        template.Name[(template.Name.LastIndexOf(Separator) + 1)..];

    /// <summary>The full setting name of <paramref name="template"/> for the worker <paramref name="worker"/>.</summary>
    public static string FullName(string worker, SettingDefinition template) =>
        FullName(worker, AttributeOf(template));

    /// <summary>The full setting name <c>worker.WORKER.ATTRIBUTE</c>.</summary>
    public static string FullName(string worker, string attribute) =>
        string.Concat(Prefix, Separator.ToString(), worker, Separator.ToString(), attribute);

    /// <summary>Finds the template of an attribute name such as <c>count</c>.</summary>
    public static bool TryGetAttribute(string attribute, [NotNullWhen(true)] out SettingDefinition? template) =>
        s_byAttribute.TryGetValue(attribute, out template);

    /// <summary>The template of the attribute <paramref name="attribute"/>; throws for an unknown attribute.</summary>
    public static SettingDefinition GetAttribute(string attribute) =>
        s_byAttribute.TryGetValue(attribute, out SettingDefinition? template)
            ? template
            : throw new ArgumentException($"internal error: \"{attribute}\" is not a worker attribute", nameof(attribute));

    /// <summary>Whether <paramref name="worker"/> is a valid worker name (see <see cref="WorkerNamePattern"/>).</summary>
    public static bool IsValidWorkerName(string worker) => WorkerNameRegex().IsMatch(worker);

    /// <summary>
    /// Splits <c>worker.X.Y</c> into the worker part X (everything between the first and the last dot, so it may be
    /// invalid) and the attribute Y. Returns false when <paramref name="name"/> is not shaped like a worker setting.
    /// </summary>
    public static bool TrySplit(string name, out string worker, out string attribute)
    {
        worker = "";
        attribute = "";
        string prefix = Prefix + Separator;
        int lastSeparator = name.LastIndexOf(Separator);
        if (!name.StartsWith(prefix, StringComparison.Ordinal) || lastSeparator < prefix.Length)
        {
            return false;
        }

        worker = name[prefix.Length..lastSeparator];
        attribute = name[(lastSeparator + 1)..];
        return worker.Length > 0 && attribute.Length > 0;
    }

    private static SettingDefinition Define(string attribute, SettingKind kind, string? defaultText, string description,
        long min = 0, long max = 0, IReadOnlyList<string>? allowedValues = null, bool allowEmpty = true,
        string documentation = "", int maxBytes = 0) => new()
    {
        MaxBytes = maxBytes,
        Name = FullName(NamePlaceholder, attribute),
        Kind = kind,
        DefaultText = defaultText,
        Min = min,
        Max = max,
        AllowedValues = allowedValues ?? [],
        AllowEmpty = allowEmpty,
        Context = SettingContext.Reload,
        Group = SettingGroup.Workers,
        Description = description,
        Documentation = documentation,
    };

    [GeneratedRegex("^" + WorkerNamePattern + @"\z", RegexOptions.CultureInvariant)]
    private static partial Regex WorkerNameRegex();
}
