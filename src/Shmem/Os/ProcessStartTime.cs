using System.Globalization;

namespace Postmaster.Shmem.Os;

/// <summary>
/// One process told apart from any later process with the same pid: its pid and its start time (field 22 of
/// <c>/proc/PID/stat</c>, clock ticks since boot). The kernel reuses a pid only after its process is gone, and a new
/// process never starts at the same tick with the same pid, so (pid, start time) names one process for ever. Used
/// where a process records itself in shared memory for a peer to watch (a shared message queue's sender and
/// receiver), so that a reused pid is never taken for the peer.
/// <para><b>Dead</b> means: no such process, a zombie (state Z or X: PID 1 here does not reap orphans, so a dead
/// process can stay a zombie for ever), or a process with another start time (the pid was reused).</para>
/// </summary>
internal static class ProcessStartTime
{
    /// <summary>Fields 3 (state) and 22 (starttime) of proc(5), counted after the last ')' of "PID (COMM) S ...".</summary>
    private const int StateField = 0;
    private const int StartTimeField = 19;

    private static long s_self; // this process's start time, read on first use (0: not read yet)

    /// <summary>This process's start time (read once).</summary>
    public static long Self
    {
        get
        {
            long ticks = Volatile.Read(ref s_self);
            if (ticks != 0)
                return ticks;
            if (!TryRead(ProcessControl.CurrentPid, out _, out ticks))
                throw new InvalidOperationException("could not read this process's start time from /proc/self/stat");
            Volatile.Write(ref s_self, ticks);
            return ticks;
        }
    }

    /// <summary>The state letter and start time of process <paramref name="pid"/>; false when there is no such
    /// process (or it vanished while being read, or its stat line cannot be parsed).</summary>
    public static bool TryRead(int pid, out char state, out long startTicks)
    {
        state = '\0';
        startTicks = 0;
        if (pid <= 0)
            return false;
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false; // FileNotFound/DirectoryNotFound: the process is gone
        }
        // COMM may hold spaces and parentheses, so fields are counted after the last ')'.
        int close = text.LastIndexOf(')');
        if (close < 0)
            return false;
        var rest = text.AsSpan(close + 1);
        int field = 0;
        foreach (var range in rest.Split(' '))
        {
            var word = rest[range];
            if (word.IsEmpty)
                continue;
            if (field == StateField)
            {
                if (word.Length != 1)
                    return false;
                state = word[0];
            }
            else if (field == StartTimeField)
            {
                return long.TryParse(word, NumberStyles.None, CultureInfo.InvariantCulture, out startTicks);
            }
            field++;
        }
        return false;
    }

    /// <summary>True when process <paramref name="pid"/> runs and is not a zombie, and — when
    /// <paramref name="startTicks"/> is not 0 — started at that time (it is the same process, not one that reused the
    /// pid). With <paramref name="startTicks"/> 0 only the pid is checked.</summary>
    public static bool IsAlive(int pid, long startTicks)
    {
        if (!TryRead(pid, out char state, out long ticks))
            return false;
        if (state is 'Z' or 'X')
            return false;
        return startTicks == 0 || ticks == startTicks;
    }
}
