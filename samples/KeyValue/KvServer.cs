using System.Globalization;
using System.Net.Sockets;
using Postmaster.Workers;

namespace KeyValue;

/// <summary>
/// A key-value server speaking the Redis protocol (RESP2), run as the postmaster's connection worker: each backend
/// process serves one client at a time, many backends run at once, and all of them share one hash table in shared
/// memory (<see cref="SharedKvStorage"/>: the registry's named shared hash table over a growing shared area), so every
/// client sees the same keys. Try it with
/// <c>redis-cli -p PORT</c> or <c>redis-benchmark -p PORT -t ping,set,get,incr</c>.
/// <para>Configure it with <c>connection_worker = '/path/to/KeyValue.dll:KeyValue.KvServer'</c>. The argument, when
/// given, is the memory limit of the keys and values, like Redis's maxmemory (<c>64MB</c>, <c>1GB</c>, <c>65536kB</c> or
/// bytes; default <see cref="DefaultMemoryLimit"/>): the table grows as keys arrive, up to it.
/// Commands and replies: <see cref="KvCommands"/>; limits: <see cref="KvLimits"/> and <see cref="RespReader"/>.</para>
/// <para><b>A session</b> reads what the client sent, executes every complete command in it (pipelining) into one
/// output buffer, and sends the buffer once the input holds no complete command (or the buffer passes
/// <see cref="FlushThreshold"/>). It ends when the client closes the connection, on QUIT, after a protocol error
/// (replied to), or when the backend is stopping (between commands, or at once when the client is idle: the stop shuts
/// the socket down); a socket error (the backend closing the socket, a client reset) ends it quietly.</para>
/// </summary>
public sealed class KvServer : IConnectionWorker
{
    /// <summary>The memory limit when the argument is empty: 64 MiB.</summary>
    public const long DefaultMemoryLimit = 64L << 20;

    /// <summary>The smallest memory limit: 1 MiB.</summary>
    public const long MinMemoryLimit = 1L << 20;

    /// <summary>The largest memory limit: 64 GiB.</summary>
    public const long MaxMemoryLimit = 64L << 30;

    /// <summary>Longest bulk string a client may send. Larger than <see cref="KvLimits.MaxValueLength"/>, so that a value
    /// over the limit gets <c>-ERR value too large</c> rather than a protocol error.</summary>
    public const int MaxBulkLength = 1024 * 1024;

    /// <summary>Most bytes buffered for a command still incomplete (<see cref="RespReader.MaxCommandLength"/>).</summary>
    public const int MaxCommandLength = 2 * 1024 * 1024;

    /// <summary>Output buffered beyond this is sent before the next command (long pipelines of GETs).</summary>
    public const int FlushThreshold = 64 * 1024;

    private readonly object _gate = new();
    private SharedKvStorage? _storage; // kept across the sessions of this backend, like the mapping it uses

    /// <inheritdoc />
    public void Serve(WorkerContext context, ClientSession session) =>
        ServeConnection(session.Socket, new KvCommands(Storage(context, ref _storage, _gate)), session.Stopping);

    /// <summary>The table, opened by the first session of a backend (sessions may run at once: a thread each with
    /// <c>concurrent_sessions_per_backend</c>; each gets its own <see cref="KvCommands"/>).</summary>
    internal static SharedKvStorage Storage(WorkerContext context, ref SharedKvStorage? storage, object gate)
    {
        lock (gate)
            return storage ??= SharedKvStorage.Open(context, ParseSize(context.Argument));
    }

    /// <summary>The session loop, on any connected socket (the tests use a loopback connection).</summary>
    internal static void ServeConnection(Socket socket, KvCommands commands, CancellationToken stopping)
    {
        var input = new RespReader(MaxBulkLength, MaxCommandLength);
        var output = new RespWriter();
        var arguments = new List<ReadOnlyMemory<byte>>();
        // A stop must also end a session whose client is idle: shutdown(2) makes the blocking Receive return 0.
        using var wake = ShutDownOnStop(socket, stopping);
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                int received = socket.Receive(input.GetReceiveSpace());
                if (received == 0)
                    return; // the client closed the connection
                input.Commit(received);
                bool more = ExecuteReceived(commands, stopping, input, output, arguments, socket) == Executed.NeedInput;
                Send(socket, output); // no complete command is left: answer those executed (QUIT's and errors' too)
                if (!more)
                    return;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            // The connection is gone (or closed by the backend to stop us): nothing to answer.
        }
    }

    /// <summary>Shuts <paramref name="socket"/> down when <paramref name="stopping"/> fires: a receive waiting for an
    /// idle client returns 0, and replies not sent yet are not sent.</summary>
    internal static CancellationTokenRegistration ShutDownOnStop(Socket socket, CancellationToken stopping) =>
        stopping.Register(() =>
        {
            try
            {
                socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Already closed: nothing to wake.
            }
        });

    /// <summary>What <see cref="ExecuteReceived"/> stopped at.</summary>
    internal enum Executed
    {
        /// <summary>No complete command is left: send the output, then receive.</summary>
        NeedInput,

        /// <summary>The output passed <see cref="FlushThreshold"/> (only without a socket to flush it to): send it,
        /// then execute what is left.</summary>
        Flush,

        /// <summary>The session is over (QUIT, a protocol error, a stop): send the output, then end.</summary>
        End,
    }

    /// <summary>Executes the complete commands received into <paramref name="output"/>; when <paramref name="flushTo"/>
    /// is given, sends the output there whenever it passes <see cref="FlushThreshold"/> (no lock is held between
    /// commands), else stops then with <see cref="Executed.Flush"/>.</summary>
    internal static Executed ExecuteReceived(KvCommands commands, CancellationToken stopping, RespReader input,
        RespWriter output, List<ReadOnlyMemory<byte>> arguments, Socket? flushTo)
    {
        try
        {
            while (input.TryReadCommand(arguments))
            {
                if (!commands.Execute(arguments, output) || stopping.IsCancellationRequested)
                    return Executed.End;
                if (output.Length >= FlushThreshold)
                {
                    if (flushTo is null)
                        return Executed.Flush;
                    Send(flushTo, output);
                }
            }
            return Executed.NeedInput;
        }
        catch (RespProtocolException e)
        {
            output.WriteError("ERR " + e.Message);
            return Executed.End;
        }
    }

    /// <summary>Sends the output buffer (no lock is held here) and empties it.</summary>
    private static void Send(Socket socket, RespWriter output)
    {
        var pending = output.Written;
        while (!pending.IsEmpty)
            pending = pending[socket.Send(pending)..];
        output.Clear();
    }

    /// <summary>The memory limit in <paramref name="argument"/>: empty for the default, else bytes with an optional
    /// PostgreSQL memory unit (kB, MB, GB; 1024-based).</summary>
    internal static long ParseSize(string argument)
    {
        string text = argument.Trim();
        if (text.Length == 0)
            return DefaultMemoryLimit;
        (string digits, long unit) = text switch
        {
            _ when text.EndsWith("kB", StringComparison.Ordinal) => (text[..^2], 1L << 10),
            _ when text.EndsWith("MB", StringComparison.Ordinal) => (text[..^2], 1L << 20),
            _ when text.EndsWith("GB", StringComparison.Ordinal) => (text[..^2], 1L << 30),
            _ => (text, 1L),
        };
        if (!long.TryParse(digits.TrimEnd(), NumberStyles.None, CultureInfo.InvariantCulture, out long count)
            || count > MaxMemoryLimit / unit || count * unit < MinMemoryLimit)
            throw new ArgumentException(
                $"invalid key-value memory limit \"{argument}\": expected 1MB to 64GB, e.g. \"64MB\"", nameof(argument));
        return count * unit;
    }
}
