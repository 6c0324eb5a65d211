using System.Text;

namespace Postmaster.Configuration;

/// <summary>
/// Reads the text of a <c>postmaster.conf</c> file into <see cref="ConfigEntry"/> items, in the syntax of
/// <c>postgresql.conf</c>:
/// <list type="bullet">
/// <item><c>name = value</c> per line; the <c>=</c> is optional; names are case-insensitive and become lower case.</item>
/// <item><c>#</c> starts a comment, also after a value; blank lines are ignored; lines end with LF or CRLF.</item>
/// <item>A value is a bare word (letters, digits and <c>_ - + . : /</c>) or a single-quoted string on one line, in which
/// <c>''</c> and <c>\'</c> stand for a quote, <c>\\</c> for a backslash, <c>\b \f \n \r \t</c> for control characters
/// and <c>\ooo</c> for an octal character code; any other escaped character stands for itself.</item>
/// </list>
/// Each malformed line gives one syntax error and parsing goes on with the next line, so every error is reported.
/// Only the syntax is checked here; names and values are checked by <see cref="SettingsBuilder"/>.
/// </summary>
internal static class ConfigFileParser
{
    private const char Quote = '\'';
    private const char Backslash = '\\';
    private const char CommentStart = '#';
    private const char Assign = '=';
    private const int MaxOctalDigits = 3;
    private const int OctalBase = 8;

    private const string SyntaxHint =
        "Lines have the form name = value; quote a value that contains spaces or other special characters: 'like this'.";

    private const string UnterminatedHint = "Unterminated quoted string: the closing ' must be on the same line.";

    /// <summary>Parses <paramref name="text"/>, the contents of <paramref name="path"/>, appending to the two lists.</summary>
    public static void Parse(string text, string path, List<ConfigEntry> entries, List<ConfigError> errors)
    {
        string[] lines = text.Split('\n');
        for (int index = 0; index < lines.Length; index++)
        {
            string line = lines[index].EndsWith('\r') ? lines[index][..^1] : lines[index];
            ParseLine(line, SettingSource.FromFile(path, index + 1), entries, errors);
        }
    }

    private static void ParseLine(string line, SettingSource source, List<ConfigEntry> entries, List<ConfigError> errors)
    {
        int position = SkipWhitespace(line, 0);
        if (IsEndOfContent(line, position))
        {
            return;
        }

        if (!IsNameStart(line[position]))
        {
            errors.Add(SyntaxError(source, line, position, parameter: null));
            return;
        }

        int nameStart = position;
        while (position < line.Length && IsNameChar(line[position]))
        {
            position++;
        }

        string name = line[nameStart..position].ToLowerInvariant();
        position = SkipWhitespace(line, position);
        if (position < line.Length && line[position] == Assign)
        {
            position = SkipWhitespace(line, position + 1);
        }

        if (IsEndOfContent(line, position))
        {
            errors.Add(SyntaxError(source, line, position, name));
            return;
        }

        string value;
        if (line[position] == Quote)
        {
            if (!TryReadQuoted(line, ref position, out value))
            {
                errors.Add(ConfigError.At(source, SyntaxMessage(source, line, position, name), UnterminatedHint));
                return;
            }
        }
        else if (IsBareChar(line[position]))
        {
            int valueStart = position;
            position = SkipBare(line, position);
            value = line[valueStart..position];
        }
        else
        {
            errors.Add(SyntaxError(source, line, position, name));
            return;
        }

        position = SkipWhitespace(line, position);
        if (!IsEndOfContent(line, position))
        {
            errors.Add(SyntaxError(source, line, position, name));
            return;
        }

        entries.Add(new ConfigEntry(name, value, source));
    }

    /// <summary>Reads a quoted string starting at the quote at <paramref name="position"/>. On success, moves
    /// <paramref name="position"/> past the closing quote; on failure (no closing quote) leaves it unchanged.</summary>
    private static bool TryReadQuoted(string line, ref int position, out string value)
    {
        var text = new StringBuilder();
        int index = position + 1;
        while (index < line.Length)
        {
            char c = line[index];
            if (c == Quote)
            {
                if (index + 1 < line.Length && line[index + 1] == Quote)
                {
                    text.Append(Quote);
                    index += 2;
                    continue;
                }

                position = index + 1;
                value = text.ToString();
                return true;
            }

            if (c == Backslash)
            {
                if (index + 1 >= line.Length)
                {
                    break;
                }

                index = AppendEscape(line, index + 1, text);
                continue;
            }

            text.Append(c);
            index++;
        }

        value = "";
        return false;
    }

    /// <summary>Appends the character escaped at <paramref name="index"/> (just after a backslash); returns the index
    /// after the escape sequence.</summary>
    private static int AppendEscape(string line, int index, StringBuilder text)
    {
        char c = line[index];
        switch (c)
        {
            case 'b': text.Append('\b'); return index + 1;
            case 'f': text.Append('\f'); return index + 1;
            case 'n': text.Append('\n'); return index + 1;
            case 'r': text.Append('\r'); return index + 1;
            case 't': text.Append('\t'); return index + 1;
        }

        if (!IsOctalDigit(c))
        {
            text.Append(c);
            return index + 1;
        }

        int code = 0;
        int end = index;
        while (end < line.Length && end - index < MaxOctalDigits && IsOctalDigit(line[end]))
        {
            code = code * OctalBase + (line[end] - '0');
            end++;
        }

        text.Append((char)code);
        return end;
    }

    private static ConfigError SyntaxError(SettingSource source, string line, int position, string? parameter) =>
        ConfigError.At(source, SyntaxMessage(source, line, position, parameter), SyntaxHint);

    private static string SyntaxMessage(SettingSource source, string line, int position, string? parameter)
    {
        string near = IsEndOfContent(line, position) ? "near end of line" : $"near token \"{TokenAt(line, position)}\"";
        string message = $"syntax error in {source.Location}, {near}";
        return parameter is null ? message : $"{message} (parameter \"{parameter}\")";
    }

    /// <summary>The token starting at <paramref name="position"/>, for error messages: a quoted string (as far as it
    /// goes), a bare word, or a single character.</summary>
    private static string TokenAt(string line, int position)
    {
        char first = line[position];
        if (first == Quote)
        {
            int probe = position;
            return TryReadQuoted(line, ref probe, out _) ? line[position..probe] : line[position..].TrimEnd();
        }

        return IsBareChar(first) ? line[position..SkipBare(line, position)] : first.ToString();
    }

    private static int SkipWhitespace(string line, int position)
    {
        while (position < line.Length && line[position] is ' ' or '\t' or '\f' or '\v' or '\r')
        {
            position++;
        }

        return position;
    }

    private static int SkipBare(string line, int position)
    {
        while (position < line.Length && IsBareChar(line[position]))
        {
            position++;
        }

        return position;
    }

    private static bool IsEndOfContent(string line, int position) =>
        position >= line.Length || line[position] == CommentStart;

    private static bool IsNameStart(char c) => char.IsAsciiLetter(c) || c == '_';

    private static bool IsNameChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-';

    private static bool IsBareChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '+' or '.' or ':' or '/';

    private static bool IsOctalDigit(char c) => c is >= '0' and <= '7';
}
