using System.Text;
using Postmaster.Workers;

namespace Postmaster.TestChild.Workers;

/// <summary>
/// Test connection worker: greets each session with <c>hello session ID NUMBER PID</c>, then answers each line:
/// <c>quit</c> ends the session, <c>lock NAME</c> takes the named lock exclusively and keeps it (the session then ends
/// with it held), <c>unlock NAME</c> releases it, <c>throw</c> throws, <c>counter</c>
/// increments a shared counter (named main-segment space, under a named lock) and replies its value; anything else is
/// echoed back.
/// </summary>
public sealed class EchoConnectionWorker : IConnectionWorker
{
    public void Serve(WorkerContext context, ClientSession session)
    {
        var stream = session.Stream;
        var reader = new StreamReader(stream, Encoding.UTF8);
        void Reply(string line)
        {
            var bytes = Encoding.UTF8.GetBytes(line + "\n");
            stream.Write(bytes);
        }
        Reply($"hello session {session.Id} {session.Number} {Environment.ProcessId} {session.Peer}");
        while (reader.ReadLine() is { } line)
        {
            if (line == "quit")
                return;
            if (line.StartsWith("lock ", StringComparison.Ordinal))
            {
                context.Locks.Acquire(context.NamedLock(line[5..]), LWLockMode.Exclusive);
                Reply("locked");
            }
            else if (line.StartsWith("unlock ", StringComparison.Ordinal))
            {
                context.Locks.Release(context.NamedLock(line[7..]));
                Reply("unlocked");
            }
            else if (line == "throw")
            {
                throw new InvalidOperationException("the client asked for it");
            }
            else if (line == "counter")
            {
                var region = context.InitStruct("echo counter", 8, out _);
                using (context.Locks.Hold(context.NamedLock("echo counter"), LWLockMode.Exclusive))
                    Reply((++region.Ref<long>(0)).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            else if (line == "argument")
            {
                Reply($"argument [{context.Argument}]");
            }
            else
            {
                Reply(line);
            }
        }
    }
}
