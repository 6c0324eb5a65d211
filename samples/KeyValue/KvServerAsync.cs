using System.Net.Sockets;
using Postmaster.Workers;

namespace KeyValue;

/// <summary>
/// <see cref="KvServer"/>'s asynchronous shape, for backends that serve many clients at once
/// (<c>concurrent_sessions_per_backend</c>): <c>connection_worker = '/path/to/KeyValue.dll:KeyValue.KvServerAsync'</c>.
/// The same commands, table, argument and session rules; each session receives and sends with
/// <see cref="Socket.ReceiveAsync(Memory{byte}, SocketFlags, CancellationToken)"/>, so one backend's event loop serves
/// every client that is ready. Nothing in a session blocks but the table's locks, held for one command.
/// </summary>
public sealed class KvServerAsync : IAsyncConnectionWorker
{
    private readonly object _gate = new();
    private SharedKvStorage? _storage;

    /// <inheritdoc />
    public Task ServeAsync(WorkerContext context, ClientSession session, CancellationToken stopping) =>
        ServeConnectionAsync(session.Socket, new KvCommands(KvServer.Storage(context, ref _storage, _gate)), stopping);

    /// <summary>The session loop, on any connected socket (the tests use a loopback connection).</summary>
    internal static async Task ServeConnectionAsync(Socket socket, KvCommands commands, CancellationToken stopping)
    {
        var input = new RespReader(KvServer.MaxBulkLength, KvServer.MaxCommandLength);
        var output = new RespWriter();
        var arguments = new List<ReadOnlyMemory<byte>>();
        using var wake = KvServer.ShutDownOnStop(socket, stopping); // as the synchronous loop: a stop ends an idle session
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                // The token is not passed to the receive: a stop shuts the socket down, which ends it with 0 bytes,
                // and cancelling a socket operation costs a registration on every call.
                int received = await socket.ReceiveAsync(input.GetReceiveMemory(), SocketFlags.None).ConfigureAwait(false);
                if (received == 0)
                    return; // the client closed the connection
                input.Commit(received);
                KvServer.Executed executed;
                do
                {
                    executed = KvServer.ExecuteReceived(commands, stopping, input, output, arguments, flushTo: null);
                    await SendAsync(socket, output).ConfigureAwait(false);
                }
                while (executed == KvServer.Executed.Flush);
                if (executed == KvServer.Executed.End)
                    return;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            // The connection is gone (or shut down by the backend to stop us): nothing to answer.
        }
    }

    private static async ValueTask SendAsync(Socket socket, RespWriter output)
    {
        var pending = output.WrittenMemory;
        while (!pending.IsEmpty)
            pending = pending[await socket.SendAsync(pending, SocketFlags.None).ConfigureAwait(false)..];
        output.Clear();
    }
}
