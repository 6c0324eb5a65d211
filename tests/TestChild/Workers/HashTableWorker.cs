using System.Text;
using Postmaster.Workers;

namespace Postmaster.TestChild.Workers;

/// <summary>A worker on the registry's shared hash table "crash-table" (argument: <c>fill N</c> | <c>hold</c> |
/// <c>count</c>). fill: sets keys k0..kN-1, logs "filled N", then waits to be stopped (holding no lock); hold: logs
/// "holding the partition lock" from inside an in-place update and blocks there (the test kills it); count: logs
/// "table has N keys" and waits.</summary>
public sealed class HashTableWorker : IBackgroundWorker
{
    public int Run(WorkerContext context)
    {
        var table = context.Registry.GetNamedHashTable("crash-table", keySize: 0, out _);
        var words = context.Argument.Split(' ');
        switch (words[0])
        {
            case "fill":
                int n = int.Parse(words[1]);
                for (int i = 0; i < n; i++)
                    table.Set(Encoding.ASCII.GetBytes("k" + i), BitConverter.GetBytes(i));
                context.Log($"filled {n}");
                break;
            case "hold":
                table.Set("held"u8, new byte[8]);
                table.Update("held"u8, static (_, ctx) =>
                {
                    ctx.Log("holding the partition lock");
                    Thread.Sleep(Timeout.Infinite);
                }, context);
                break;
            case "count":
                context.Log($"table has {table.Count} keys");
                break;
            default:
                throw new ArgumentException($"unknown mode \"{context.Argument}\"");
        }
        context.WaitUntilStopping(Timeout.InfiniteTimeSpan);
        return 0;
    }
}
