using Postmaster.Shmem.Os;
using Postmaster.Workers;

namespace Postmaster.Backend.Workers;

/// <summary>
/// "exit": leaves in a chosen way, for crash and restart tests. Argument "CODE[:DELAY]" exits with CODE, or
/// "SIGNAME[:DELAY]" (KILL, SEGV, QUIT, ...) kills itself with that signal, "raw:CODE[:DELAY]" calls _exit(CODE) at
/// once, skipping the exit path (the dead-man switch then reports it); DELAY is "250ms", "2s" or plain
/// milliseconds (default 0). SIGTERM during the delay ends it with exit 1 like any stopped worker.
/// A code exit goes through the normal exit path; a signal does not (the dead-man switch sees that).
/// </summary>
internal sealed class ExitWorker : IBackgroundWorker
{
    public const string RawPrefix = "raw:";

    public int Run(WorkerContext context)
    {
        bool raw = context.Argument.StartsWith(RawPrefix, StringComparison.Ordinal);
        var (how, delay) = Parse(raw ? context.Argument[RawPrefix.Length..] : context.Argument);
        if (delay > TimeSpan.Zero && context.WaitUntilStopping(delay))
            return 1;
        if (how.Signal is int sig)
            ProcessControl.DieBySignal(sig);
        if (raw)
            ProcessControl.ExitImmediately(how.Code!.Value);
        return how.Code!.Value;
    }

    public static ((int? Code, int? Signal), TimeSpan) Parse(string argument)
    {
        var parts = argument.Split(':', 2);
        var what = parts[0].Trim();
        TimeSpan delay = TimeSpan.Zero;
        if (parts.Length == 2)
            delay = ParseDelay(parts[1].Trim());
        if (int.TryParse(what, out int code) && code is >= 0 and <= 255)
            return ((code, null), delay);
        if (Signals.TryParse(what, out int sig))
            return ((null, sig), delay);
        throw new ArgumentException($"invalid argument \"{argument}\" for worker \"exit\": expected CODE (0-255) or SIGNAME, then optionally \":DELAY\"");
    }

    private static TimeSpan ParseDelay(string text)
    {
        if (text.EndsWith("ms") && double.TryParse(text[..^2], out double ms))
            return TimeSpan.FromMilliseconds(ms);
        if (text.EndsWith('s') && double.TryParse(text[..^1], out double s))
            return TimeSpan.FromSeconds(s);
        if (double.TryParse(text, out double plain))
            return TimeSpan.FromMilliseconds(plain);
        throw new ArgumentException($"invalid delay \"{text}\" for worker \"exit\": use e.g. 250ms or 2s");
    }
}
