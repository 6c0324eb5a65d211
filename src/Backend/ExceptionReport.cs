using System.Text;

namespace Postmaster.Backend;

/// <summary>
/// How an exception of user code (a worker, an exit callback) is reported: its one-line summary for the message, and
/// its stack trace for the entry's CONTEXT lines, with every inner exception's ("caused by TYPE: MESSAGE", then its
/// frames). An <see cref="AggregateException"/> of one exception (a task's fault seen through <c>Wait</c> or
/// <c>Result</c>) stands for that exception.
/// </summary>
internal static class ExceptionReport
{
    /// <summary><paramref name="e"/> without the AggregateException wrappers that hold exactly one exception.</summary>
    public static Exception Unwrap(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } aggregate)
            e = aggregate.InnerExceptions[0];
        return e;
    }

    /// <summary>"TYPE: MESSAGE" (the type's short name, as PostgreSQL names an error by its condition).</summary>
    public static string Summary(Exception e) => e.GetType().Name + ": " + e.Message;

    /// <summary>The stack trace, one frame a line, then each inner exception's; null when there is none (an exception
    /// that was never thrown).</summary>
    public static string? Trace(Exception e)
    {
        var sb = new StringBuilder();
        AppendFrames(sb, e.StackTrace);
        for (var inner = e.InnerException; inner is not null; inner = inner.InnerException)
        {
            sb.Append("caused by ").Append(inner.GetType().FullName).Append(": ").Append(inner.Message).Append('\n');
            AppendFrames(sb, inner.StackTrace);
        }
        return sb.Length == 0 ? null : sb.ToString();
    }

    private static void AppendFrames(StringBuilder sb, string? trace)
    {
        if (trace is null)
            return;
        foreach (var line in trace.Split('\n'))
        {
            var frame = line.Trim();
            if (frame.Length > 0)
                sb.Append(frame).Append('\n');
        }
    }
}
