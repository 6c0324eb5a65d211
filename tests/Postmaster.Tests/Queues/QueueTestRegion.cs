using Postmaster.Shmem;
using Postmaster.Shmem.Queues;
using Postmaster.Shmem.Segments;
using Postmaster.Tests.Support;

namespace Postmaster.Tests.Queues;

/// <summary>
/// A POSIX segment (a unique name per test) holding one message queue over its whole size, for tests in one process.
/// <see cref="View"/> opens another view of the queue (as another process would). Dispose detaches every view made
/// here and destroys the segment, also when the test failed.
/// </summary>
internal sealed class QueueTestRegion : IDisposable
{
    private readonly MappedSegment _segment;
    private readonly List<MessageQueue> _views = new();

    public QueueTestRegion(string label, long ringSize)
    {
        Name = IpcNames.Posix(label);
        _segment = MappedSegment.CreatePosix(Name, MessageQueue.RequiredSize(ringSize))
                   ?? throw new InvalidOperationException($"segment {Name} exists already");
        try
        {
            Queue = MessageQueue.Initialize(_segment.Region);
            _views.Add(Queue);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Name { get; }

    public ShmemRegion Region => _segment.Region;

    /// <summary>The creator's view.</summary>
    public MessageQueue Queue { get; }

    /// <summary>Another view of the same queue, validated (<see cref="MessageQueue.Attach"/>).</summary>
    public MessageQueue View()
    {
        var view = MessageQueue.Attach(_segment.Region);
        _views.Add(view);
        return view;
    }

    /// <summary>A sender view and a receiver view, roles taken.</summary>
    public (MessageQueue Sender, MessageQueue Receiver) Pair()
    {
        var sender = View();
        sender.SetSender();
        var receiver = View();
        receiver.SetReceiver();
        return (sender, receiver);
    }

    public void Dispose()
    {
        foreach (var view in _views)
            view.Detach();
        _segment.Destroy();
        _segment.Dispose();
    }
}
