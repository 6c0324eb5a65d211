using System.Buffers.Text;
using System.Text;

namespace KeyValue;

/// <summary>
/// Executes one command against the storage and writes its reply (Redis's replies and error messages). Command names
/// are case-insensitive. Every storage operation is atomic on its key (the shared hash table holds the key's partition
/// lock for it); a value is copied into process memory before the reply is written, and replies are sent later by the
/// server, never under a lock. INCR is a read and a compare-and-set, retried when another client changed the value in
/// between. Commands with several keys (DEL, EXISTS) go one key at a time, so they are not atomic across keys.
/// <para>Commands: PING [message], ECHO message, SET key value, GET key, DEL key [key ...], EXISTS key [key ...],
/// INCR key, DBSIZE, QUIT, COMMAND [...] (an empty array: enough for redis-cli), CONFIG GET parameter [...]
/// (<c>save</c> and <c>appendonly</c>, which redis-benchmark asks for).</para>
/// </summary>
/// <param name="storage">The table and its locks.</param>
public sealed class KvCommands(IKvStorage storage)
{
    private readonly byte[] _value = new byte[16 * 1024]; // GET's copy of a value (larger ones are allocated)

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
        if (key.Length > KvLimits.MaxKeyLength)
        {
            reply.WriteNullBulkString(); // no such key can exist
            return;
        }
        int length = storage.Read(key, _value);
        if (length < 0)
            reply.WriteNullBulkString();
        else if (length <= _value.Length)
            reply.WriteBulkString(_value.AsSpan(0, length));
        else if (storage.Get(key) is { } large) // changed or removed since: this read is the answer
            reply.WriteBulkString(large);
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
        var value = arguments[2].Span;
        var status = key.Length > KvLimits.MaxKeyLength ? KvStatus.KeyTooLarge
            : value.Length > KvLimits.MaxValueLength ? KvStatus.ValueTooLarge
            : storage.Set(key, value);
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
        long value = 0;
        var status = key.Length > KvLimits.MaxKeyLength ? KvStatus.KeyTooLarge : Increment(key, out value);
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
            if (key.Length <= KvLimits.MaxKeyLength && (delete ? storage.Delete(key) : storage.Read(key, default) >= 0))
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
        reply.WriteInteger(storage.Count);
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
            case KvStatus.OutOfMemory:
                reply.WriteError("OOM command not allowed when used memory > 'maxmemory'.");
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

    /// <summary>INCR: read, add one, compare-and-set; again when another client changed the key in between.</summary>
    private KvStatus Increment(ReadOnlySpan<byte> key, out long value)
    {
        Span<byte> next = stackalloc byte[20];
        while (true)
        {
            int length = storage.Read(key, _value);
            if (length < 0)
            {
                value = 1;
                switch (storage.TryAdd(key, "1"u8))
                {
                    case true:
                        return KvStatus.Ok;
                    case null:
                        return KvStatus.OutOfMemory;
                }
                continue; // created meanwhile
            }
            var current = _value.AsSpan(0, Math.Min(length, _value.Length));
            if (length > 20 || !Utf8Parser.TryParse(current, out long parsed, out int consumed) || consumed != current.Length
                || !Canonical(current, parsed))
            {
                value = 0;
                return KvStatus.NotAnInteger;
            }
            if (parsed == long.MaxValue)
            {
                value = 0;
                return KvStatus.Overflow;
            }
            value = parsed + 1;
            Utf8Formatter.TryFormat(value, next, out int written);
            switch (storage.TryUpdate(key, next[..written], current))
            {
                case true:
                    return KvStatus.Ok;
                case null:
                    value = 0;
                    return KvStatus.OutOfMemory;
            }
        }
    }

    /// <summary>Redis accepts only the canonical form: no sign but '-', no leading zeros, no spaces.</summary>
    private static bool Canonical(ReadOnlySpan<byte> text, long parsed)
    {
        Span<byte> canonical = stackalloc byte[20];
        return Utf8Formatter.TryFormat(parsed, canonical, out int n) && canonical[..n].SequenceEqual(text);
    }

    private static void WrongArity(string command, RespWriter reply) =>
        reply.WriteError($"ERR wrong number of arguments for '{command}' command");

    private static bool Is(ReadOnlySpan<byte> name, ReadOnlySpan<byte> command) => Ascii.EqualsIgnoreCase(name, command);

    /// <summary>A client's bytes for an error message: at most 128 characters, like Redis.</summary>
    private static string Text(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes[..Math.Min(bytes.Length, 128)]);
}
