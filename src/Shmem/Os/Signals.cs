namespace Postmaster.Shmem.Os;

/// <summary>Linux signal numbers (identical on x86-64 and arm64) and their strsignal() descriptions.</summary>
internal static class Signals
{
    public const int SIGHUP = 1;
    public const int SIGINT = 2;
    public const int SIGQUIT = 3;
    public const int SIGABRT = 6;
    public const int SIGKILL = 9;
    public const int SIGUSR1 = 10;
    public const int SIGSEGV = 11;
    public const int SIGUSR2 = 12;
    public const int SIGPIPE = 13;
    public const int SIGTERM = 15;
    public const int SIGCHLD = 17;
    public const int SIGCONT = 18;
    public const int SIGSTOP = 19;

    private static readonly Dictionary<string, int> s_byName = new(StringComparer.OrdinalIgnoreCase)
    {
        ["HUP"] = SIGHUP, ["INT"] = SIGINT, ["QUIT"] = SIGQUIT, ["ABRT"] = SIGABRT, ["KILL"] = SIGKILL,
        ["USR1"] = SIGUSR1, ["SEGV"] = SIGSEGV, ["USR2"] = SIGUSR2, ["PIPE"] = SIGPIPE, ["TERM"] = SIGTERM,
        ["CHLD"] = SIGCHLD, ["CONT"] = SIGCONT, ["STOP"] = SIGSTOP,
    };

    /// <summary>strsignal() text, as PostgreSQL prints after "terminated by signal N: ".</summary>
    public static string Describe(int signal) => signal switch
    {
        SIGHUP => "Hangup",
        SIGINT => "Interrupt",
        SIGQUIT => "Quit",
        SIGABRT => "Aborted",
        SIGKILL => "Killed",
        SIGUSR1 => "User defined signal 1",
        SIGSEGV => "Segmentation fault",
        SIGUSR2 => "User defined signal 2",
        SIGPIPE => "Broken pipe",
        SIGTERM => "Terminated",
        SIGCHLD => "Child exited",
        7 => "Bus error",
        8 => "Floating point exception",
        4 => "Illegal instruction",
        5 => "Trace/breakpoint trap",
        _ => $"Unknown signal {signal}",
    };

    /// <summary>Parses "KILL", "SIGKILL" or "9".</summary>
    public static bool TryParse(string text, out int signal)
    {
        if (int.TryParse(text, out signal))
            return signal is > 0 and < 65;
        var name = text.StartsWith("SIG", StringComparison.OrdinalIgnoreCase) ? text[3..] : text;
        return s_byName.TryGetValue(name, out signal);
    }
}
