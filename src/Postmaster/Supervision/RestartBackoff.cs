namespace Postmaster.Supervision;

/// <summary>
/// Exponential restart delay for one worker instance (systemd's RestartSteps/RestartMaxDelaySec, supervisord's most
/// requested feature): the first restart after <c>restart_delay</c>, each consecutive failure doubles it up to
/// <c>restart_delay_max</c>; a run that lasted <c>stable_period</c> or longer resets the count. Pure: unit-tested.
/// </summary>
public static class RestartBackoff
{
    /// <param name="consecutiveFailures">Failures in a row including the one just seen (1 for the first).</param>
    public static TimeSpan Delay(TimeSpan first, TimeSpan max, int consecutiveFailures)
    {
        if (consecutiveFailures <= 1 || first <= TimeSpan.Zero)
            return first < max ? first : max;
        double factor = Math.Pow(2, Math.Min(consecutiveFailures - 1, 40));
        double ms = first.TotalMilliseconds * factor;
        return ms >= max.TotalMilliseconds ? max : TimeSpan.FromMilliseconds(ms);
    }

    /// <summary>The failure count to use after a run of <paramref name="ranFor"/>: reset if it was stable.</summary>
    public static int NextFailureCount(int previous, TimeSpan ranFor, TimeSpan stablePeriod) =>
        ranFor >= stablePeriod ? 1 : previous + 1;
}
