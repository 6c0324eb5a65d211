namespace Postmaster.Cli;

/// <summary>How the CLI prints failures: "postmaster: message", then DETAIL and HINT lines (never an empty one).</summary>
public static class Report
{
    public static void Error(string message, string? detail = null, string? hint = null)
    {
        Console.Error.WriteLine("postmaster: " + message);
        if (!string.IsNullOrWhiteSpace(detail))
            Console.Error.WriteLine("DETAIL:  " + detail.Trim());
        if (!string.IsNullOrWhiteSpace(hint))
            Console.Error.WriteLine("HINT:  " + hint.Trim());
    }

    /// <summary>A warning that does not change the outcome (printed on stderr).</summary>
    public static void Warning(string message, string? detail = null, string? hint = null)
    {
        Console.Error.WriteLine("postmaster: warning: " + message);
        if (!string.IsNullOrWhiteSpace(detail))
            Console.Error.WriteLine("DETAIL:  " + detail.Trim());
        if (!string.IsNullOrWhiteSpace(hint))
            Console.Error.WriteLine("HINT:  " + hint.Trim());
    }
}
