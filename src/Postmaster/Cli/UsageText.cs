using System.Text.RegularExpressions;

namespace Postmaster.Cli;

/// <summary>System.CommandLine's own parse-error texts that would show .NET details, in our words. Our options
/// validate their values themselves; this is the net under them (e.g. a value given to a switch).</summary>
public static partial class UsageText
{
    [GeneratedRegex("^Cannot parse argument '(?<value>.*)' for (?<kind>option|argument) '(?<name>[^']*)' as expected type '[^']*'\\.?$", RegexOptions.Singleline)]
    private static partial Regex CannotParse();

    public static string Rephrase(string message)
    {
        var m = CannotParse().Match(message);
        if (m.Success)
            return $"invalid value for {m.Groups["kind"].Value} \"{m.Groups["name"].Value}\": \"{m.Groups["value"].Value}\"";
        return message.Replace("\r", "").Replace("\n\t", " ").Replace('\n', ' ');
    }
}
