namespace Postmaster.Cli;

/// <summary>How the CLI prints failures: "postmaster: message", then DETAIL and HINT lines.</summary>
public static class Report
{
    public static void Error(string message, string? detail = null, string? hint = null)
    {
        Console.Error.WriteLine("postmaster: " + message);
        if (detail is not null)
            Console.Error.WriteLine("DETAIL:  " + detail);
        if (hint is not null)
            Console.Error.WriteLine("HINT:  " + hint);
    }
}
