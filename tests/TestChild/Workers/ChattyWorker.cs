using Postmaster.Workers;

namespace Postmaster.TestChild.Workers;

/// <summary>Log traffic for the collector tests. Argument "COUNT:SIZE[:kill]": logs COUNT messages "chatty N/COUNT "
/// padded with 'x' to SIZE characters (a large SIZE needs several pipe frames), one message with a line break, one
/// raw line on stdout and one on stderr (not through the SDK), then "chatty done"; with "kill" it then dies by
/// SIGKILL at once, otherwise it waits to be stopped.</summary>
public sealed class ChattyWorker : IBackgroundWorker
{
    public int Run(WorkerContext context)
    {
        string[] parts = context.Argument.Split(':');
        int count = int.Parse(parts[0]);
        int size = int.Parse(parts[1]);
        for (int i = 1; i <= count; i++)
        {
            string head = $"chatty {i}/{count} ";
            context.Log(head + new string('x', Math.Max(0, size - head.Length)));
        }
        context.Log("chatty first line\nchatty second line");
        Console.Out.WriteLine($"chatty raw stdout {Environment.ProcessId}");
        Console.Out.Flush();
        Console.Error.WriteLine($"chatty raw stderr {Environment.ProcessId}");
        Console.Error.Flush();
        context.Log("chatty done");
        if (parts.Length > 2 && parts[2] == "kill")
            System.Diagnostics.Process.GetCurrentProcess().Kill(); // SIGKILL
        context.Stopping.WaitHandle.WaitOne();
        return 1;
    }
}
