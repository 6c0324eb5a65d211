using System.Text;
using Postmaster.Workers;

namespace KeyValue;

/// <summary>
/// Executes one command against the table and writes its reply (Redis's replies and error messages). Command names
/// are case-insensitive. Each key is read under its partition's lock held shared, and written under it held exclusive;
/// the reply is copied into the <see cref="RespWriter"/> (process memory) before the lock is released, and sent later
/// by the server, never under a lock. Commands with several keys (DEL, EXISTS) take one partition at a time, so they are
/// not atomic across keys.
/// <para>Commands: PING [message], ECHO message, SET key value, GET key, DEL key [key ...], EXISTS key [key ...],
/// INCR key, DBSIZE, QUIT, COMMAND [...] (an empty array: enough for redis-cli), CONFIG GET parameter [...]
/// (<c>save</c> and <c>appendonly</c>, which redis-benchmark asks for).</para>
/// </summary>
/// <param name="storage">The table and its locks.</param>
public sealed class KvCommands(IKvStorage storage)
{
    /// <summary>Executes <paramref name="arguments"/> (the name, then its arguments) and writes the reply.</summary>
    /// <param name="arguments">From <see cref="RespReader.TryReadCommand"/>; at least one.</param>
    /// <param name="reply">Where the reply goes.</param>
    /// <returns>False when the session is to end after the reply is sent (QUIT).</returns>
    public bool Execute(IReadOnlyList<ReadOnlyMemory<byte>> arguments, RespWriter reply)
    {
        var name = arguments[0].Span;
        if (Is(name, "GET"u8))
            Get(arguments, reply);
        else if (Is(name, "SET"u8))
            Set(arguments, reply);
        else if (Is(name, "INCR"u8))
            Increment(arguments, reply);
        else if (Is(name, "DEL"u8) || Is(name, "EXISTS"u8))
            DeleteOrCount(arguments, reply, delete: Is(name, "DEL"u8));
        else if (Is(name, "PING"u8))
            Ping(arguments, reply);
        else if (Is(name, "ECHO"u8))
            Echo(arguments, reply);
        else if (Is(name, "DBSIZE"u8))
            DatabaseSize(arguments, reply);
        else if (Is(name, "COMMAND"u8))
            reply.WriteArrayHeader(0);
        else if (Is(name, "CONFIG"u8))
            Config(arguments, reply);
        else if (Is(name, "QUIT"u8))
        {
            reply.WriteSimpleString("OK"u8);
            return false;
        }
        else
            reply.WriteError($"ERR unknown command '{Text(name)}'");
        return true;
    }

    private void Get(IReadOnlyList<ReadOnlyMemory<byte>> arguments, RespWriter reply)
    {
        if (arguments.Count != 2)
        {
            WrongArity("get", reply);
            return;
        }
        var key = arguments[1].Span;
        using var held = storage.Hold(KvTable.PartitionOf(key), LWLockMode.Shared);
        if (storage.Table.TryGet(key, out var value))
            reply.WriteBulkString(value); // copied out under the lock
        else
            reply.WriteNullBulkString();
    }

    private void Set(IReadOnlyList<ReadOnlyMemory<byte>> arguments, RespWriter reply)
    {
        if (arguments.Count < 3)
        {
            WrongArity("set", reply);
            return;
        }
        if (arguments.Count > 3)
        {
            reply.WriteError("ERR syntax error"); // Redis's reply to options (EX, NX, ...), which this table does not have
            return;
        }
        var key = arguments[1].Span;
        KvStatus status;
        using (storage.Hold(KvTable.PartitionOf(key), LWLockMode.Exclusive))
            status = storage.Table.Set(key, arguments[2].Span);
        WriteStatus(status, reply);
    }

    private void Increment(IReadOnlyList<ReadOnlyMemory<byte>> arguments, RespWriter reply)
    {
        if (arguments.Count != 2)
        {
            WrongArity("incr", reply);
            return;
        }
        var key = arguments[1].Span;
        KvStatus status;
        long value;
        using (storage.Hold(KvTable.PartitionOf(key), LWLockMode.Exclusive))
            status = storage.Table.Increment(key, out value);
        if (status == KvStatus.Ok)
            reply.WriteInteger(value);
        else
            WriteStatus(status, reply);
    }

    private void DeleteOrCount(IReadOnlyList<ReadOnlyMemory<byte>> arguments, RespWriter reply, bool delete)
    {
        if (arguments.Count < 2)
        {
            WrongArity(delete ? "del" : "exists", reply);
            return;
        }
        long count = 0;
        for (int i = 1; i < arguments.Count; i++)
        {
            var key = arguments[i].Span;
            using var held = storage.Hold(KvTable.PartitionOf(key), delete ? LWLockMode.Exclusive : LWLockMode.Shared);
            if (delete ? storage.Table.Delete(key) : storage.Table.Contains(key))
                count++;
        }
        reply.WriteInteger(count);
    }

    private static void Ping(IReadOnlyList<ReadOnlyMemory<byte>> arguments, RespWriter reply)
    {
        if (arguments.Count > 2)
            WrongArity("ping", reply);
        else if (arguments.Count == 2)
            reply.WriteBulkString(arguments[1].Span);
        else
            reply.WriteSimpleString("PONG"u8);
    }

    private static void Echo(IReadOnlyList<ReadOnlyMemory<byte>> arguments, RespWriter reply)
    {
        if (arguments.Count != 2)
            WrongArity("echo", reply);
        else
            reply.WriteBulkString(arguments[1].Span);
    }

    private void DatabaseSize(IReadOnlyList<ReadOnlyMemory<byte>> arguments, RespWriter reply)
    {
        if (arguments.Count != 1)
        {
            WrongArity("dbsize", reply);
            return;
        }
        long count = 0;
        for (int partition = 0; partition < KvTable.PartitionCount; partition++)
        {
            using var held = storage.Hold(partition, LWLockMode.Shared);
            count += storage.Table.Count(partition);
        }
        reply.WriteInteger(count);
    }

    /// <summary>CONFIG GET answers <c>save</c> (no snapshots) and <c>appendonly</c> (no), which redis-benchmark reads at
    /// start (it warns "Could not fetch server CONFIG" when the reply is not such a pair); other parameters are not
    /// listed, as Redis does for a pattern that matches nothing.</summary>
    private static void Config(IReadOnlyList<ReadOnlyMemory<byte>> arguments, RespWriter reply)
    {
        if (arguments.Count < 2)
        {
            WrongArity("config", reply);
            return;
        }
        if (!Is(arguments[1].Span, "GET"u8))
        {
            reply.WriteError($"ERR unknown subcommand '{Text(arguments[1].Span)}'. Try CONFIG HELP.");
            return;
        }
        if (arguments.Count < 3)
        {
            WrongArity("config|get", reply);
            return;
        }
        int matches = 0;
        for (int i = 2; i < arguments.Count; i++)
            matches += TryGetParameter(arguments[i].Span, out _, out _) ? 1 : 0;
        reply.WriteArrayHeader(2 * matches);
        for (int i = 2; i < arguments.Count; i++)
        {
            if (TryGetParameter(arguments[i].Span, out var name, out var value))
            {
                reply.WriteBulkString(name);
                reply.WriteBulkString(value);
            }
        }
    }

    private static bool TryGetParameter(ReadOnlySpan<byte> parameter, out ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        if (Is(parameter, "save"u8))
        {
            name = "save"u8;
            value = ""u8;
            return true;
        }
        if (Is(parameter, "appendonly"u8))
        {
            name = "appendonly"u8;
            value = "no"u8;
            return true;
        }
        name = value = default;
        return false;
    }

    private static void WriteStatus(KvStatus status, RespWriter reply)
    {
        switch (status)
        {
            case KvStatus.Ok:
                reply.WriteSimpleString("OK"u8);
                break;
            case KvStatus.KeyTooLarge:
                reply.WriteError("ERR key too large");
                break;
            case KvStatus.ValueTooLarge:
                reply.WriteError("ERR value too large");
                break;
            case KvStatus.TableFull:
                reply.WriteError("ERR table full");
                break;
            case KvStatus.NotAnInteger:
                reply.WriteError("ERR value is not an integer or out of range");
                break;
            case KvStatus.Overflow:
                reply.WriteError("ERR increment or decrement would overflow");
                break;
            default:
                throw new InvalidOperationException($"internal error: unexpected table status {status}");
        }
    }

    private static void WrongArity(string command, RespWriter reply) =>
        reply.WriteError($"ERR wrong number of arguments for '{command}' command");

    private static bool Is(ReadOnlySpan<byte> name, ReadOnlySpan<byte> command) => Ascii.EqualsIgnoreCase(name, command);

    /// <summary>A client's bytes for an error message: at most 128 characters, like Redis.</summary>
    private static string Text(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes[..Math.Min(bytes.Length, 128)]);
}
