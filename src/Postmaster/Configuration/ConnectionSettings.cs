using System.Net;

namespace Postmaster.Configuration;

/// <summary>Checks and parses the connection settings' values (where they enter: the parser places a failure at the
/// value's file:line).</summary>
public static class ConnectionSettings
{
    /// <summary>The name of the Unix-domain socket for <paramref name="port"/> (PostgreSQL: <c>.s.PGSQL.PORT</c>).</summary>
    public static string SocketFileName(int port) => $".s.POSTMASTER.{port}";

    /// <summary>Longest path of a Unix-domain socket (sun_path holds 108 bytes with the terminating NUL).</summary>
    public const int MaxSocketPathBytes = 107;

    public static string? ValidateEntry(string text)
    {
        if (text.Length == 0)
            return null;
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1 || !text[..colon].EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
            return "Expected \"path/to/Assembly.dll:Namespace.Type\" naming a connection worker, or empty.";
        string type = text[(colon + 1)..];
        if (type.Any(char.IsWhiteSpace) || type.StartsWith('.') || type.EndsWith('.'))
            return $"\"{type}\" is not a type name.";
        return null;
    }

    public static string? ValidateListenAddresses(string text)
    {
        foreach (string item in SplitList(text))
        {
            if (item == "*" || IPAddress.TryParse(item, out _))
                continue;
            if (Uri.CheckHostName(item) != UriHostNameType.Dns)
                return $"\"{item}\" is not a host name or an IP address. Use a comma-separated list of host names and IP " +
                       "addresses, \"*\" for every address, or an empty string for none.";
        }
        return null;
    }

    public static string? ValidateSocketDirectories(string text)
    {
        foreach (string item in SplitList(text))
            if (item.Contains('\n'))
                return "A socket directory must not contain a newline (it goes into postmaster.pid).";
        return null;
    }

    public static string? ValidatePermissions(string text) =>
        TryParseOctal(text, out _) ? null : "Expected an octal mode from 0000 to 0777, e.g. 0770.";

    /// <summary>An octal mode (a leading 0 is optional) from 0 to 0777.</summary>
    public static bool TryParseOctal(string text, out int mode)
    {
        mode = 0;
        string t = text.Trim();
        if (t.Length == 0 || t.Length > 4)
            return false;
        foreach (char c in t)
        {
            if (c is < '0' or > '7')
                return false;
            mode = mode * 8 + (c - '0');
        }
        return mode <= 0x1FF;
    }

    /// <summary>Items of a comma-separated list, trimmed, empty ones dropped.</summary>
    public static IReadOnlyList<string> SplitList(string text) =>
        text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
}
