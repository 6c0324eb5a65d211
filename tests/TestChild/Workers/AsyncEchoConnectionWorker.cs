using System.Text;
using Postmaster.Workers;

namespace Postmaster.TestChild.Workers;

/// <summary>
/// <see cref="EchoConnectionWorker"/>'s asynchronous shape, for backends that serve several sessions at once: the same
/// greeting (<c>hello session ID NUMBER PID PEER</c>) and commands (<c>quit</c>, <c>lock NAME</c>, <c>unlock NAME</c>,
/// <c>throw</c>, <c>argument</c>; <c>thread</c> replies the name of the thread the
/// session's code runs on after its last receive; anything else is echoed), with asynchronous reads and writes.
/// </summary>
public sealed class AsyncEchoConnectionWorker : IAsyncConnectionWorker
{
    public async Task ServeAsync(WorkerContext context, ClientSession session, CancellationToken stopping)
    {
        var stream = session.Stream;
        var reader = new StreamReader(stream, Encoding.UTF8);
        async Task Reply(string line) => await stream.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"));
        await Reply($"hello session {session.Id} {session.Number} {Environment.ProcessId} {session.Peer}");
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line == "quit")
                return;
            if (line.StartsWith("lock ", StringComparison.Ordinal))
            {
                context.Locks.Acquire(context.NamedLock(line[5..]), LWLockMode.Exclusive);
                await Reply("locked");
            }
            else if (line.StartsWith("unlock ", StringComparison.Ordinal))
            {
                context.Locks.Release(context.NamedLock(line[7..]));
                await Reply("unlocked");
            }
            else if (line == "throw")
            {
                throw new InvalidOperationException("the client asked for it");
            }
            else if (line == "thread")
            {
                await Reply(Thread.CurrentThread.Name ?? "(unnamed)"); // where the receive's continuation ran
            }
            else if (line == "argument")
            {
                await Reply($"argument [{context.Argument}]");
            }
            else
            {
                await Reply(line);
            }
        }
    }
}
