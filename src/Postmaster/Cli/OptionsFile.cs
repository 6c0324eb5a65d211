using System.Text;

namespace Postmaster.Cli;

/// <summary>DIR/postmaster.opts: the start command line of the running server, reused by <c>restart</c>.
/// One line of double-quoted arguments (backslash escapes " and \).</summary>
public static class OptionsFile
{
    public static string Format(IEnumerable<string> args) =>
        string.Join(' ', args.Select(a => "\"" + a.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\""));

    public static List<string> Parse(string line)
    {
        var args = new List<string>();
        var cur = new StringBuilder();
        bool inQuote = false, any = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (inQuote)
            {
                if (c == '\\' && i + 1 < line.Length)
                    cur.Append(line[++i]);
                else if (c == '"')
                    inQuote = false;
                else
                    cur.Append(c);
            }
            else if (c == '"')
            {
                inQuote = any = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (any)
                    args.Add(cur.ToString());
                cur.Clear();
                any = false;
            }
            else
            {
                cur.Append(c);
                any = true;
            }
        }
        if (any)
            args.Add(cur.ToString());
        return args;
    }
}
