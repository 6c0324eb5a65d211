namespace Postmaster.Tests.Queues;

/// <summary>
/// Deterministic test messages: message <c>i</c> of a run with seed <c>s</c> is random bytes from
/// <c>new Random(s + i)</c>, so the receiver (in this process or a TestChild, which has the same generator in
/// Scenarios/QueueScenario.cs) can rebuild and compare it byte for byte. Sizes cycle through every size class of a
/// ring: 0, 1, 7, 8, 9, ring-1, ring, ring+1, 10 × ring and 1 MiB.
/// </summary>
internal static class QueueMessages
{
    public const int OneMiB = 1024 * 1024;

    /// <summary>The size classes for a ring of <paramref name="ring"/> bytes.</summary>
    public static int[] SizeClasses(long ring) =>
        [0, 1, 7, 8, 9, (int)ring - 1, (int)ring, (int)ring + 1, 10 * (int)ring, OneMiB];

    /// <summary>Message <paramref name="index"/> of length <paramref name="size"/> with seed <paramref name="seed"/>.</summary>
    public static byte[] Make(int seed, int index, int size)
    {
        var bytes = new byte[size];
        new Random(seed + index).NextBytes(bytes);
        return bytes;
    }

    /// <summary>The size of message <paramref name="index"/> in a mixed run (the size classes in turn).</summary>
    public static int MixedSize(long ring, int index)
    {
        var classes = SizeClasses(ring);
        return classes[index % classes.Length];
    }
}
