namespace Postmaster.Tests.Support;

/// <summary>IPC names and keys unique to this test process and call, so parallel tests and CI runs never collide.</summary>
public static class IpcNames
{
    private static int s_counter;

    /// <summary>A POSIX shm name like "/pmtest.1234.7.label".</summary>
    public static string Posix(string label) =>
        $"/pmtest.{Environment.ProcessId}.{Interlocked.Increment(ref s_counter)}.{label}";

    /// <summary>A SysV key unlikely to be used by anyone else: derived from pid and a counter, never IPC_PRIVATE.</summary>
    public static int SysVKey() =>
        unchecked((int)(0x50000000u | ((uint)Environment.ProcessId << 12) ^ (uint)Interlocked.Increment(ref s_counter))) & 0x7fffffff;
}
