using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.IO.Pipes;
using System.Runtime.InteropServices;
using System.Text;
using Postmaster.Shmem.Segments;
using Postmaster.Workers;
using EngineRegion = Postmaster.Shmem.ShmemRegion;

namespace Postmaster.Bench.Suites;

/// <summary>
/// Suite "queue": message throughput of a shared message queue (the SDK's <see cref="SharedMessageQueue"/>) between
/// two processes, against a pipe between the same two processes in the same run. A helper process (this executable,
/// <see cref="BenchChild"/>, pinned to the other CPU) sends; this process receives and times. For each message size,
/// the variants take turns run by run (pipe, queue, pipe, queue ...) so drift in the shared machine's load hits both
/// alike; figures are medians of <see cref="Measure.Runs"/> runs after a warm-up run.
/// <para>Both carry the same framing: an 8-byte length, then the bytes. The pipe writer makes one write(2) per message
/// (length and bytes together, as a sender that must not sit on a message has to); the reader reads through a 64 kB
/// <see cref="BufferedStream"/>, so small messages cost it one read(2) per buffer, not per message. The queue sender
/// calls <see cref="SharedMessageQueue.Send(ReadOnlySpan{byte}, CancellationToken)"/>, the receiver
/// <see cref="SharedMessageQueue.Receive(Span{byte}, out int, CancellationToken)"/> into one buffer (no allocation).
/// Commands reach the helper through a small control queue, outside the timed part. Target: the queue at least 3× the
/// pipe's throughput for 64 kB messages. The table also goes to docs/benchmarks-queues.md.</para>
/// </summary>
public sealed class QueueSuite : IBenchSuite
{
    private const double Target64k = 3.0;
    private const int ControlRing = 4096;
    private const int PipeReadBuffer = 64 * 1024;

    /// <summary>(message size, ring size, messages per run).</summary>
    private static readonly (int Size, int Ring, int Count)[] s_cases =
    [
        (64, 1024 * 1024, 400_000),
        (64 * 1024, 1024 * 1024, 16_000),
        (64, 64 * 1024, 400_000),
        (64 * 1024, 64 * 1024, 16_000),
    ];

    public string Name => "queue";

    public string Description => "shared message queue throughput between two processes vs a pipe (64 B and 64 kB messages)";

    public void Run()
    {
        var rows = new List<string>();
        foreach (var ring in s_cases.Select(c => c.Ring).Distinct())
        {
            using var bench = new Session(ring);
            foreach (var (size, _, count) in s_cases.Where(c => c.Ring == ring))
                rows.Add(bench.Compare(size, count));
            bench.Stop();
        }
        var text = new StringBuilder();
        text.AppendLine("| message | ring | pipe | queue | queue ÷ pipe (throughput) | target |");
        text.AppendLine("|---|---|---|---|---|---|");
        rows.ForEach(r => text.AppendLine(r));
        text.AppendLine();
        text.AppendLine(MeasureDeathLatency());
        Console.Write(text);
        WriteReport(text.ToString());
    }

    /// <summary>How long a receiver blocked on an empty queue takes to return Detached after its sender is killed
    /// (SIGKILL, reaped at once by this process): <see cref="DeathRounds"/> rounds, each with a new helper.</summary>
    private static string MeasureDeathLatency()
    {
        var latencies = new List<double>();
        for (int round = 0; round < DeathRounds; round++)
        {
            using var bench = new Session(64 * 1024);
            var receiving = Task.Run(bench.ReceiveOnce);
            while (!bench.ReceiverSleeping)
                Thread.Sleep(1); // a bench, not a test: poll until the receiver sleeps in the futex
            long start = Stopwatch.GetTimestamp();
            bench.KillHelper();
            if (receiving.Result != SharedMessageQueueResult.Detached)
                throw new InvalidOperationException($"the receiver got {receiving.Result}, not Detached");
            latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        latencies.Sort();
        return $"Peer death: a receiver blocked on an empty queue returned Detached {Stats.Median(latencies):F1} ms (median; " +
               $"{latencies[0]:F1} to {latencies[^1]:F1} ms over {DeathRounds} rounds) after its sender was SIGKILLed " +
               $"(the liveness check runs after every {Postmaster.Shmem.Queues.MessageQueue.PeerCheckInterval.TotalMilliseconds:0} ms sleep slice).";
    }

    private const int DeathRounds = 9;

    /// <summary>Helper: <c>SEGMENT RING DATA-PIPE</c>. Receives commands on the control queue ("queue N SIZE",
    /// "pipe N SIZE", "stop") and sends N messages of SIZE bytes on the data queue or the data pipe.</summary>
    public int RunChild(string[] args)
    {
        using var segment = MappedSegment.AttachPosix(args[0]) ?? throw new InvalidOperationException($"segment {args[0]} is gone");
        int ring = int.Parse(args[1], CultureInfo.InvariantCulture);
        var (control, data) = Session.Queues(segment.Region, ring, attach: true);
        control.SetReceiver();
        data.SetSender();
        using var pipe = new AnonymousPipeClientStream(PipeDirection.Out, args[2]);
        var buffer = new byte[Session.ControlMessage];
        var payload = new byte[Session.MaxMessage + 8];
        new Random(1).NextBytes(payload);
        Console.WriteLine("ready");
        while (control.Receive(buffer, out int length) == SharedMessageQueueResult.Success)
        {
            var words = Encoding.ASCII.GetString(buffer, 0, length).Split(' ');
            if (words[0] == "stop")
                break;
            int count = int.Parse(words[1], CultureInfo.InvariantCulture);
            int size = int.Parse(words[2], CultureInfo.InvariantCulture);
            if (words[0] == "queue")
            {
                var message = payload.AsSpan(0, size);
                for (int i = 0; i < count; i++)
                    if (data.Send(message) != SharedMessageQueueResult.Success)
                        return 1;
            }
            else
            {
                BinaryPrimitives.WriteInt64LittleEndian(payload, size); // the same framing: length, then the bytes
                var framed = payload.AsSpan(0, 8 + size);
                for (int i = 0; i < count; i++)
                    pipe.Write(framed);
            }
        }
        data.Dispose();
        control.Dispose();
        return 0;
    }

    /// <summary>The parent's side for one ring size: the segment with both queues (control, then data), the data
    /// pipe and the helper. Dispose ends the helper and removes everything, also after a failure.</summary>
    private sealed class Session : IDisposable
    {
        public const int ControlMessage = 64;
        public const int MaxMessage = 1024 * 1024;

        private readonly MappedSegment _segment;
        private readonly SharedMessageQueue? _control;
        private readonly SharedMessageQueue? _data;
        private readonly AnonymousPipeServerStream? _pipe;
        private readonly BufferedStream? _pipeReader;
        private readonly BenchChild? _child;
        private readonly Affinity? _pin;
        private readonly byte[] _buffer = new byte[MaxMessage + 8];
        private readonly int _ring;
        private bool _helperGone;

        public Session(int ring)
        {
            _ring = ring;
            string name = $"/pmbench.{Environment.ProcessId}.queue.{ring}";
            _segment = MappedSegment.CreatePosix(name, SharedMessageQueue.RequiredSize(ControlRing) + SharedMessageQueue.RequiredSize(ring))
                       ?? throw new InvalidOperationException($"segment {name} exists");
            try
            {
                (_control, _data) = Queues(_segment.Region, ring, attach: false);
                _control.SetSender();
                _data.SetReceiver();
                _pipe = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.Inheritable);
                _pin = Affinity.PinParent();
                _child = BenchChild.Start("queue", name, ring.ToString(CultureInfo.InvariantCulture), _pipe.GetClientHandleAsString());
                _pipe.DisposeLocalCopyOfClientHandle();
                _child.WaitForLine("ready");
                _segment.Destroy(); // both have it mapped: the name can go, so nothing is left whatever happens next
                _pipeReader = new BufferedStream(_pipe, PipeReadBuffer);
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        /// <summary>The control queue and the data queue laid out one after the other in <paramref name="region"/>.</summary>
        public static (SharedMessageQueue Control, SharedMessageQueue Data) Queues(EngineRegion region, int ring, bool attach)
        {
            var whole = new ShmemRegion(region);
            long controlSize = SharedMessageQueue.RequiredSize(ControlRing);
            var controlRegion = whole.Slice(0, controlSize);
            var dataRegion = whole.Slice(controlSize, SharedMessageQueue.RequiredSize(ring));
            return attach
                ? (SharedMessageQueue.Attach(controlRegion), SharedMessageQueue.Attach(dataRegion))
                : (SharedMessageQueue.Initialize(controlRegion), SharedMessageQueue.Initialize(dataRegion));
        }

        /// <summary>One table row: pipe and queue runs taking turns, medians of the measured runs.</summary>
        public string Compare(int size, int count)
        {
            var pipe = new List<double>();
            var queue = new List<double>();
            for (int run = 0; run <= Measure.Runs; run++) // run 0 warms up
            {
                double p = TimePipe(size, count);
                double q = TimeQueue(size, count);
                if (run > 0)
                {
                    pipe.Add(p);
                    queue.Add(q);
                }
            }
            double pipeSeconds = Stats.Median(pipe);
            double queueSeconds = Stats.Median(queue);
            double ratio = pipeSeconds / queueSeconds;
            string target = size == 64 * 1024 ? $"{(ratio >= Target64k ? "met" : "MISSED")} (≥ {Target64k}×)" : "—";
            return $"| {Bytes(size)} | {Bytes(_ring)} | {Rate(count, size, pipeSeconds)} | {Rate(count, size, queueSeconds)} | " +
                   $"{ratio:F2}× | {target} |";
        }

        private double TimeQueue(int size, int count)
        {
            long start = Stopwatch.GetTimestamp();
            Command($"queue {count} {size}");
            for (int i = 0; i < count; i++)
            {
                if (_data!.Receive(_buffer, out int length) != SharedMessageQueueResult.Success || length != size)
                    throw new InvalidOperationException($"queue message {i}: {length} bytes, expected {size}");
            }
            return Stopwatch.GetElapsedTime(start).TotalSeconds;
        }

        private double TimePipe(int size, int count)
        {
            long start = Stopwatch.GetTimestamp();
            Command($"pipe {count} {size}");
            for (int i = 0; i < count; i++)
            {
                _pipeReader!.ReadExactly(_buffer.AsSpan(0, 8));
                long length = BinaryPrimitives.ReadInt64LittleEndian(_buffer);
                if (length != size)
                    throw new InvalidOperationException($"pipe message {i}: {length} bytes, expected {size}");
                _pipeReader.ReadExactly(_buffer.AsSpan(0, size));
            }
            return Stopwatch.GetElapsedTime(start).TotalSeconds;
        }

        private void Command(string text)
        {
            if (_control!.Send(Encoding.ASCII.GetBytes(text)) != SharedMessageQueueResult.Success)
                throw new InvalidOperationException("the helper detached its control queue");
        }

        /// <summary>One blocking receive on the data queue (for the peer-death measurement).</summary>
        public SharedMessageQueueResult ReceiveOnce() => _data!.Receive(_buffer, out _);

        /// <summary>True while this side sleeps on the data queue's futex.</summary>
        public bool ReceiverSleeping => _data!.Inner.State.ReceiverSleeping;

        /// <summary>SIGKILLs the helper (and reaps it).</summary>
        public void KillHelper()
        {
            _helperGone = true;
            _child!.Dispose();
        }

        /// <summary>Tells the helper to stop and waits for its exit (code 0).</summary>
        public void Stop()
        {
            Command("stop");
            _child!.WaitForExit();
        }

        public void Dispose()
        {
            if (!_helperGone)
                _child?.Dispose();
            _data?.Dispose();
            _control?.Dispose();
            _pipeReader?.Dispose();
            _pipe?.Dispose();
            _segment.Destroy();
            _segment.Dispose();
            _pin?.Dispose();
        }
    }

    private static string Bytes(int n) => n >= 1024 * 1024 ? $"{n / (1024 * 1024)} MiB" : n >= 1024 ? $"{n / 1024} kB" : $"{n} B";

    private static string Rate(int count, int size, double seconds)
    {
        double perSecond = count / seconds;
        string messages = perSecond >= 1e6 ? $"{perSecond / 1e6:F2} M msg/s" : $"{perSecond / 1e3:F0} k msg/s";
        return $"{messages}, {(double)count * size / seconds / 1e6:F0} MB/s";
    }

    private static void WriteReport(string markdown)
    {
        string path = Path.Combine(FindRepoRoot(), "docs", "benchmarks-queues.md");
        File.WriteAllText(path,
            "# Benchmarks: shared message queues\n\n" +
            $"Measured {DateTime.UtcNow:yyyy-MM-dd} with `./run.sh bench queue` on {Environment.ProcessorCount} cores (shared with " +
            $"other work), {RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}. A helper process " +
            "sends, this one receives; the parent is pinned to CPU 0 and the helper to CPU 1. Each figure is the median of " +
            $"{Measure.Runs} runs after a warm-up run, pipe and queue runs taking turns.\n\n" +
            markdown + "\n" +
            "- Pipe: one write(2) per message (8-byte length and the bytes together), read through a 64 kB BufferedStream; " +
            "the kernel's default pipe capacity (64 kB).\n" +
            "- Queue: the SDK's SharedMessageQueue, Send from one buffer, Receive into one buffer (no allocation); the ring " +
            "size as in the table.\n" +
            "- Ratio: queue throughput ÷ pipe throughput (higher is better).\n");
        Console.WriteLine($"\nwritten to {path}");
    }

    private static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Postmaster.sln")))
                return d.FullName;
        return Directory.GetCurrentDirectory();
    }
}
