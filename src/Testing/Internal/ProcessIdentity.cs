using System.Globalization;

namespace Postmaster.Testing.Internal;

/// <summary>
/// One process, told apart from any later process with the same pid by its start time (field 22 of
/// <c>/proc/PID/stat</c>, clock ticks since boot): the kernel reuses a pid only after its process is gone, and a new
/// process never starts at the same tick with the same pid. The harness records every process of its instance this
/// way, so cleanup never mistakes a newcomer for one of them.
/// </summary>
internal readonly record struct ProcessIdentity(int Pid, long StartTicks)
{
    /// <summary>The process <paramref name="pid"/> is now, or null when there is none (or only its zombie).</summary>
    public static ProcessIdentity? Of(int pid) =>
        Stat.Read(pid) is { } s && !s.IsZombie ? new ProcessIdentity(pid, s.StartTicks) : null;

    /// <summary>This very process still runs (not a zombie, not a newcomer with its pid).</summary>
    public bool IsAlive => Of(Pid) == this;

    /// <summary>The fields of <c>/proc/PID/stat</c> the harness needs.</summary>
    internal readonly record struct Stat(char State, int ParentPid, long StartTicks)
    {
        public bool IsZombie => State is 'Z' or 'X';

        /// <summary>Null when there is no process <paramref name="pid"/> (or it vanished while being read).</summary>
        public static Stat? Read(int pid)
        {
            if (pid <= 0)
                return null;
            string text;
            try
            {
                text = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }
            // "PID (COMM) S PPID ... ": COMM may hold spaces and parentheses, so fields are counted after the last ')'.
            int close = text.LastIndexOf(')');
            if (close < 0)
                return null;
            var f = text[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            const int StateField = 0, ParentField = 1, StartTimeField = 19; // fields 3, 4 and 22 of proc(5)
            if (f.Length <= StartTimeField || f[StateField].Length != 1 ||
                !int.TryParse(f[ParentField], NumberStyles.None, CultureInfo.InvariantCulture, out int parent) ||
                !long.TryParse(f[StartTimeField], NumberStyles.None, CultureInfo.InvariantCulture, out long start))
                return null;
            return new Stat(f[StateField][0], parent, start);
        }
    }
}
