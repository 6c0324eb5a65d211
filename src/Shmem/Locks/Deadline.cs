using System.Diagnostics;

namespace Postmaster.Shmem.Locks;

/// <summary>
/// Absolute deadlines as <see cref="Stopwatch"/> timestamps (monotonic), so a wait that is interrupted and retried
/// never extends its total bound. <see cref="Infinite"/> means "no deadline".
/// </summary>
internal static class Deadline
{
    public const long Infinite = long.MaxValue;

    private const long NanosecondsPerSecond = 1_000_000_000;

    /// <summary>The deadline <paramref name="timeout"/> from now; <see cref="Timeout.InfiniteTimeSpan"/> gives
    /// <see cref="Infinite"/>. Other negative values throw.</summary>
    public static long After(TimeSpan timeout)
    {
        if (timeout == Timeout.InfiniteTimeSpan)
            return Infinite;
        if (timeout < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "a lock timeout must be zero, positive or infinite");
        long ticks = (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        long now = Stopwatch.GetTimestamp();
        return ticks >= Infinite - now ? Infinite : now + ticks;
    }

    /// <summary>Nanoseconds left until <paramref name="deadline"/> (≤ 0 when it has passed).</summary>
    public static long RemainingNanoseconds(long deadline)
    {
        long ticks = deadline - Stopwatch.GetTimestamp();
        if (ticks <= 0)
            return 0;
        return Stopwatch.Frequency == NanosecondsPerSecond
            ? ticks
            : (long)(ticks * ((double)NanosecondsPerSecond / Stopwatch.Frequency));
    }
}
