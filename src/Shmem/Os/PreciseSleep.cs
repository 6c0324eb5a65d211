namespace Postmaster.Shmem.Os;

/// <summary>A sleep with sub-millisecond resolution (Thread.Sleep rounds down to whole milliseconds, and 0 only yields):
/// a timed futex wait on a private word nobody wakes.</summary>
internal static class PreciseSleep
{
    public static void For(TimeSpan time)
    {
        int word = 0;
        Locks.Futex.Wait(ref word, 0, Locks.Deadline.After(time));
    }
}
