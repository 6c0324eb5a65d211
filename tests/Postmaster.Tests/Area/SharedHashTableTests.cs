using System.Runtime.InteropServices;
using System.Text;
using Postmaster.Shmem.Area;
using Postmaster.Shmem.Dsm;
using Postmaster.Shmem.Errors;
using Postmaster.Tests.Dsm;
using Xunit;

namespace Postmaster.Tests.Area;

/// <summary>Single-process semantics of <see cref="SharedHashTable"/> against a <see cref="Dictionary{TKey, TValue}"/>
/// model; sessions on two slots stand for two backends.</summary>
public sealed class SharedHashTableTests
{
    private static (SharedArea Area, SharedHashTable Table) NewTable(DsmTestInstance pm, DsmSession session, int keySize = 0, int maxKey = 64)
    {
        var area = SharedArea.Create(session, session.Owner, pm.Instance.Tranches, SharedArea.DefaultInitialSegmentSize);
        return (area, SharedHashTable.Create(area, keySize, maxKey));
    }

    [Fact]
    public void Random_operations_match_a_dictionary_and_the_table_grows()
    {
        using var pm = new DsmTestInstance("hash-model", DsmType.Posix);
        var a = pm.Session(0);
        var b = pm.Session(1);
        var (area, table) = NewTable(pm, a);
        var other = SharedHashTable.Attach(SharedArea.Attach(b, b.Owner, area.Handle), table.Pointer); // another backend
        var model = new Dictionary<string, byte[]>();
        var random = new Random(42);
        long buckets = table.BucketCount;
        for (int step = 0; step < 40_000; step++)
        {
            var t = table; // one lock owner per thread, as in a backend; `other` reads it all back below
            string key = "k" + random.Next(6000);
            byte[] k = Encoding.UTF8.GetBytes(key);
            switch (random.Next(6))
            {
                case 0 or 1:
                    var value = new byte[random.Next(0, random.Next(8) == 0 ? 9000 : 40)];
                    random.NextBytes(value);
                    Assert.Equal(!model.ContainsKey(key), t.Set(k, value));
                    model[key] = value;
                    break;
                case 2:
                    var added = new byte[] { 1, 2, 3 };
                    bool absent = !model.ContainsKey(key);
                    Assert.Equal(absent, t.Set(k, added, onlyIfAbsent: true));
                    if (absent)
                        model[key] = added;
                    break;
                case 3:
                    Assert.Equal(model.Remove(key), t.Remove(k));
                    break;
                case 4:
                    bool present = model.TryGetValue(key, out var current);
                    Assert.Equal(present, t.Update(k, static (span, _) => span.Reverse(), 0));
                    if (present)
                        Array.Reverse(current!);
                    break;
                default:
                    var got = t.Get(k);
                    if (model.TryGetValue(key, out var expected))
                        Assert.Equal(expected, got);
                    else
                        Assert.Null(got);
                    break;
            }
        }
        Assert.Equal(model.Count, table.Count);
        Dictionary<string, byte[]>? items = null;
        var readBack = new Thread(() => items = other.Items().ToDictionary(p => Encoding.UTF8.GetString(p.Key), p => p.Value));
        readBack.Start();
        readBack.Join();
        Assert.NotNull(items);
        Assert.Equal(model.Count, items.Count);
        foreach (var (k, v) in model)
            Assert.Equal(v, items[k]);
        Assert.True(table.BucketCount > buckets, "the table grew");
        Assert.True(table.Resizes > 0);

        table.Destroy();
        Assert.Equal(0, area.Allocations - 1); // only the control block stays until the area is destroyed
        Assert.Contains("has been destroyed", Assert.Throws<ShmemException>(() => table.Get("k1"u8)).Message);
        area.Destroy();
    }

    [Fact]
    public void Keys_are_checked_against_the_table_s_key_rules()
    {
        using var pm = new DsmTestInstance("hash-keys", DsmType.Posix);
        var session = pm.Session(0);
        var (area, fixedKeys) = NewTable(pm, session, keySize: 8);
        var variable = SharedHashTable.Create(area, 0, maxKeyLength: 16);

        Assert.Equal("a key of this shared hash table has 8 bytes, not 3 (Parameter 'key')",
            Assert.Throws<ArgumentException>(() => fixedKeys.Set("abc"u8, "v"u8)).Message);
        Assert.Throws<ArgumentException>(() => variable.Set(ReadOnlySpan<byte>.Empty, "v"u8));
        Assert.Throws<ArgumentException>(() => variable.Get(new byte[17]));
        Assert.True(variable.Set(new byte[16], "sixteen"u8));
        Assert.Throws<ArgumentOutOfRangeException>(() => SharedHashTable.Create(area, -1));
        Assert.Throws<ArgumentException>(() => SharedHashTable.Attach(area, AreaPointer.Null));
        var notATable = area.Allocate(SharedHashTable.ItemHeaderSize * 1000, zero: true);
        Assert.Throws<ShmemCorruptException>(() => SharedHashTable.Attach(area, notATable));
        area.Destroy();
    }

    [Fact]
    public void Values_grow_and_shrink_in_place_or_move_and_stay_correct()
    {
        using var pm = new DsmTestInstance("hash-values", DsmType.Posix);
        var session = pm.Session(0);
        var (area, table) = NewTable(pm, session);
        Span<byte> small = stackalloc byte[4];
        foreach (int size in new[] { 0, 1, 7, 8, 100, 4000, 8192, 8193, 100_000, 3, 0, 2_000_000, 5 })
        {
            var value = Enumerable.Range(0, size).Select(i => (byte)(i * 7 + size)).ToArray();
            table.Set("key"u8, value);
            Assert.Equal(value, table.Get("key"u8));
            Assert.Equal(size, table.Read("key"u8, small));
        }
        Assert.Equal(1, table.Count);
        Assert.True(table.Remove("key"u8));
        Assert.False(table.ContainsKey("key"u8));
        Assert.Equal(-1, table.Read("key"u8, default));
        area.Destroy();
    }

    [Fact]
    public void Two_threads_on_two_backends_insert_and_delete_concurrently_while_the_table_grows()
    {
        using var pm = new DsmTestInstance("hash-threads", DsmType.Posix);
        var a = pm.Session(0);
        var b = pm.Session(1);
        var (area, table) = NewTable(pm, a, keySize: 4);
        var other = SharedHashTable.Attach(SharedArea.Attach(b, b.Owner, area.Handle), table.Pointer);
        for (int i = 0; i < 100; i++)
            table.Set(BitConverter.GetBytes(-1 - i), BitConverter.GetBytes(i)); // read throughout
        var errors = new List<Exception>();
        using var done = new CancellationTokenSource();
        void Run(Action body)
        {
            try
            {
                body();
            }
            catch (Exception e)
            {
                lock (errors)
                    errors.Add(e);
            }
        }
        var writers = new[] { (table, 0), (other, 1) }.Select(w => new Thread(() => Run(() =>
        {
            for (int i = w.Item2; i < 60_000; i += 2)
            {
                w.Item1.Set(BitConverter.GetBytes(i), BitConverter.GetBytes(i * 3));
                if (i % 3 == 0)
                    w.Item1.Remove(BitConverter.GetBytes(i));
            }
        }))).ToList();
        var reader = new Thread(() => Run(() =>
        {
            var mine = SharedHashTable.Attach(area, table.Pointer);
            while (!done.IsCancelled())
                for (int i = 0; i < 100; i++)
                    if (mine.Get(BitConverter.GetBytes(-1 - i)) is not { } v || BitConverter.ToInt32(v) != i)
                        throw new InvalidOperationException($"reader lost key {-1 - i} during growth");
        }));
        writers.ForEach(t => t.Start());
        reader.Start();
        writers.ForEach(t => t.Join());
        done.Cancel();
        reader.Join();
        Assert.Empty(errors);
        int expected = 100 + Enumerable.Range(0, 60_000).Count(i => i % 3 != 0);
        Assert.Equal(expected, table.Count);
        Assert.Equal(expected, other.Items().Count());
        Assert.True(table.Resizes >= 3);
        area.Destroy();
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Account
    {
        public long Balance;
        public int Updates;
    }

    [Fact]
    public void The_typed_table_stores_structs_and_updates_them_in_place()
    {
        using var pm = new DsmTestInstance("hash-typed", DsmType.Posix);
        var session = pm.Session(0);
        var area = SharedArea.Create(session, session.Owner, pm.Instance.Tranches);
        var bytes = SharedHashTable.Create(area, sizeof(long));
        var initial = new Account { Balance = 10 };
        Assert.True(bytes.Set(BitConverter.GetBytes(7L), MemoryMarshal.AsBytes(new ReadOnlySpan<Account>(in initial))));
        Assert.True(bytes.Update(BitConverter.GetBytes(7L), static (span, add) =>
        {
            ref var acct = ref MemoryMarshal.AsRef<Account>(span);
            acct.Balance += add;
            acct.Updates++;
        }, 5L));
        var account = MemoryMarshal.Read<Account>(bytes.Get(BitConverter.GetBytes(7L)));
        Assert.Equal(15, account.Balance);
        Assert.Equal(1, account.Updates);
        area.Destroy();
    }
}

internal static class CancellationExtensions
{
    public static bool IsCancelled(this CancellationTokenSource source) => source.IsCancellationRequested;
}
