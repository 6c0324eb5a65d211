using Postmaster.Workers;

namespace Postmaster.Backend.Workers;

/// <summary>
/// "dsm-hold": argument "COUNT:SIZE[:pin]" (SIZE in bytes or with kB/MB): creates COUNT dynamic shared memory
/// segments, pins each when asked, logs "created dynamic shared memory segment HANDLE", and keeps them attached
/// until stopped (the exit path detaches them). Used by the DSM and crash-recovery tests.
/// </summary>
internal sealed class DsmHoldWorker : IBackgroundWorker
{
    public int Run(WorkerContext context)
    {
        var parts = context.Argument.Split(':');
        if (parts.Length is < 2 or > 3 || !int.TryParse(parts[0], out int count) || count < 1 || ParseSize(parts[1]) is not long size ||
            parts.Length == 3 && parts[2] != "pin")
            throw new ArgumentException($"invalid argument \"{context.Argument}\" for worker \"dsm-hold\": expected COUNT:SIZE[:pin]");
        bool pin = parts.Length == 3;
        for (int i = 0; i < count; i++)
        {
            var seg = context.Dsm.Create(size)!;
            seg.Region.Span(0, (int)Math.Min(size, 8)).Fill((byte)(i + 1)); // visible content for attachers
            if (pin)
                context.Dsm.Pin(seg);
            context.Log($"created dynamic shared memory segment {seg.Handle} ({size} bytes{(pin ? ", pinned" : "")})");
        }
        context.WaitUntilStopping(Timeout.InfiniteTimeSpan);
        return 1;
    }

    public static long? ParseSize(string text)
    {
        long mult = 1;
        if (text.EndsWith("kB")) (mult, text) = (1024, text[..^2]);
        else if (text.EndsWith("MB")) (mult, text) = (1024 * 1024, text[..^2]);
        return long.TryParse(text, out long n) && n > 0 ? n * mult : null;
    }
}
