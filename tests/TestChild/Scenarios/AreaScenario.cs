using System.Text;
using Postmaster.Shmem.Area;
using Postmaster.Shmem.Registry;

namespace Postmaster.TestChild.Scenarios;

/// <summary>
/// area: a backend-like process using a named shared hash table (the registry's "GetNamedHashTable", variable keys).
/// Attaches the test's instance as <see cref="DsmChildContext"/> does (datadir, key, id, type, slot), gets table
/// name=NAME, prints "ready", then runs commands from stdin, one per line:
/// <code>
/// insert FROM TO         → inserted N      keys "kI" = 8-byte I repeated (I mod 50) + 1 times, every third removed again
/// check FROM TO          → checked N       every key of the range that insert left is there with its value
/// hold                   → holding         blocks inside the table's area lock (allocating an item): the test kills it
/// count                  → count N
/// exit                   → bye
/// </code>
/// A command that fails answers "error MESSAGE".
/// </summary>
internal static class AreaScenario
{
    public static int Run(ScenarioArgs args)
    {
        using var child = DsmChildContext.Open(args);
        var registry = new DsmRegistry(child.Instance, child.Owner, child.Dsm);
        var table = registry.GetNamedHashTable(args.String("name"), 0, 64, out bool found);
        Console.WriteLine($"ready found={found}");
        while (Console.ReadLine() is { } line)
        {
            var w = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (w.Length == 0)
                continue;
            try
            {
                switch (w[0])
                {
                    case "exit":
                        child.Dsm.DetachAll();
                        Console.WriteLine("bye");
                        return 0;
                    case "insert":
                        Console.WriteLine($"inserted {Insert(table, int.Parse(w[1]), int.Parse(w[2]))}");
                        break;
                    case "check":
                        Console.WriteLine($"checked {Check(table, int.Parse(w[1]), int.Parse(w[2]))}");
                        break;
                    case "count":
                        Console.WriteLine($"count {table.Count}");
                        break;
                    case "hold":
                        table.Area.InsideLock = () =>
                        {
                            Console.WriteLine("holding");
                            Thread.Sleep(Timeout.Infinite);
                        };
                        table.Set("held"u8, new byte[100]);
                        break;
                    default:
                        Console.WriteLine($"error unknown command {w[0]}");
                        break;
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Console.WriteLine($"error {e.Message}");
            }
        }
        return 1;
    }

    /// <summary>The value <c>insert</c> stores for key I.</summary>
    public static byte[] ValueOf(int i)
    {
        var value = new byte[8 * (i % 50 + 1)];
        for (int k = 0; k < value.Length; k += 8)
            BitConverter.TryWriteBytes(value.AsSpan(k), (long)i);
        return value;
    }

    private static int Insert(SharedHashTable table, int from, int to)
    {
        int left = 0;
        for (int i = from; i < to; i++)
        {
            byte[] key = Encoding.ASCII.GetBytes("k" + i);
            table.Set(key, ValueOf(i));
            if (i % 3 == 0)
                table.Remove(key);
            else
                left++;
        }
        return left;
    }

    private static int Check(SharedHashTable table, int from, int to)
    {
        int seen = 0;
        for (int i = from; i < to; i++)
        {
            var got = table.Get(Encoding.ASCII.GetBytes("k" + i));
            if (i % 3 == 0)
            {
                if (got is not null)
                    throw new InvalidOperationException($"k{i} should be absent");
                continue;
            }
            if (got is null || !got.AsSpan().SequenceEqual(ValueOf(i)))
                throw new InvalidOperationException($"k{i} is {(got is null ? "missing" : "wrong")}");
            seen++;
        }
        return seen;
    }
}
