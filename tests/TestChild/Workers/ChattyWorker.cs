using System.Globalization;
using System.Text;
using Postmaster.Shmem.Os;
using Postmaster.Shmem.Text;
using Postmaster.Workers;

namespace Postmaster.TestChild.Workers;

/// <summary>Log traffic for the collector tests. Argument "COUNT:SIZE[:MODE[:RATE]]": logs COUNT messages "chatty N/COUNT "
/// padded with 'x' to SIZE characters (a large SIZE needs several pipe frames), one message with a line break, one
/// raw line on stdout and one on stderr (not through the SDK), then "chatty done"; with MODE "kill" it then dies by
/// SIGKILL at once, otherwise it waits to be stopped. COUNT -1: logs until it is asked to stop. MODE "null" (the
/// logging bench's control): it builds and frames the same records the SDK would and writes them to /dev/null instead
/// of the log pipe: the same work in the backend, none for the collector. RATE: at most that many messages a second
/// (0 or absent: as fast as it can); MODE "pipe" is the plain one, to give a rate.</summary>
public sealed class ChattyWorker : IBackgroundWorker
{
    public int Run(WorkerContext context)
    {
        string[] parts = context.Argument.Split(':');
        int count = int.Parse(parts[0], CultureInfo.InvariantCulture);
        int size = int.Parse(parts[1], CultureInfo.InvariantCulture);
        string mode = parts.Length > 2 ? parts[2] : "";
        int rate = parts.Length > 3 ? int.Parse(parts[3], CultureInfo.InvariantCulture) : 0;
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        using var devNull = mode == "null" ? new FileStream("/dev/null", FileMode.Open, FileAccess.Write, FileShare.ReadWrite) : null;
        for (int i = 1; count < 0 ? !context.Stopping.IsCancellationRequested : i <= count; i++)
        {
            string head = $"chatty {i}/{count} ";
            string message = head + new string('x', Math.Max(0, size - head.Length));
            if (devNull is null)
                context.Log(message);
            else
                LogPipe.WriteRecord((int)devNull.SafeFileHandle.DangerousGetHandle(), Environment.ProcessId, Record(message));
            if (rate > 0 && i % 10 == 0)
            {
                double ahead = (double)i / rate - System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds;
                if (ahead > 0.001)
                    Thread.Sleep(TimeSpan.FromSeconds(ahead));
            }
        }
        if (mode == "null")
        {
            context.Stopping.WaitHandle.WaitOne();
            return 1;
        }
        context.Log("chatty first line\nchatty second line");
        Console.Out.WriteLine($"chatty raw stdout {Environment.ProcessId}");
        Console.Out.Flush();
        Console.Error.WriteLine($"chatty raw stderr {Environment.ProcessId}");
        Console.Error.Flush();
        context.Log("chatty done");
        if (mode == "kill")
            System.Diagnostics.Process.GetCurrentProcess().Kill(); // SIGKILL
        context.Stopping.WaitHandle.WaitOne();
        return 1;
    }

    /// <summary>The record the SDK writes for a LOG message (src/Backend/BackendLog.cs), built the same way.</summary>
    private static byte[] Record(string message)
    {
        var r = new StringBuilder(256);
        r.Append("{\"timestamp\":\"").Append(DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture))
         .Append(" UTC\",\"pid\":").Append(Environment.ProcessId)
         .Append(",\"backend_type\":\"backend\",\"worker\":\"c.1\",\"slot\":1,\"error_severity\":\"LOG\",\"message\":\"")
         .Append(message).Append("\"}");
        return Utf8Text.GetBytes(r.ToString());
    }
}
