using Postmaster.Workers;

namespace KeyValue.Tests;

/// <summary>A table in a byte array, for one thread. <see cref="Hold"/> takes no lock (it returns a default hold, which
/// releases nothing) but records the call, so tests can check which partition each command locks, and how.</summary>
internal sealed class LocalKvStorage : IKvStorage
{
    private readonly byte[] _memory;

    public LocalKvStorage(int size = 1 << 20)
    {
        _memory = new byte[size];
        KvTable.Format(_memory);
    }

    public List<(int Partition, LWLockMode Mode)> Holds { get; } = [];

    public KvTable Table => KvTable.Attach(_memory);

    /// <summary>Runs at each <see cref="Hold"/>: a test's way to act in the middle of a command.</summary>
    public Action? OnHold { get; set; }

    public LWLockHold Hold(int partition, LWLockMode mode)
    {
        Holds.Add((partition, mode));
        OnHold?.Invoke();
        return default;
    }
}
