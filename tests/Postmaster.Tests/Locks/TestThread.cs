using System.Runtime.ExceptionServices;
using Postmaster.Testing;
using Postmaster.Tests.Support;

namespace Postmaster.Tests.Locks;

/// <summary>
/// A dedicated thread running one function (lock owners are single-threaded, so each test thread creates and uses
/// its own). <see cref="Join"/> waits within <see cref="ClusterOptions.DefaultTimeout"/> and rethrows what the thread threw.
/// </summary>
public sealed class TestThread<T>
{
    private readonly Thread _thread;
    private T? _result;
    private ExceptionDispatchInfo? _error;

    public TestThread(Func<T> body)
    {
        _thread = new Thread(() =>
        {
            try
            {
                _result = body();
            }
            catch (Exception e)
            {
                _error = ExceptionDispatchInfo.Capture(e);
            }
        }) { IsBackground = true, Name = "lock test" };
        _thread.Start();
    }

    public bool IsFinished => !_thread.IsAlive;

    public T Join()
    {
        if (!_thread.Join(ClusterOptions.DefaultTimeout))
            throw new TimeoutException($"a test thread did not finish within {ClusterOptions.DefaultTimeout.TotalSeconds:0}s");
        _error?.Throw();
        return _result!;
    }
}

public static class TestThread
{
    public static TestThread<T> Start<T>(Func<T> body) => new(body);

    public static TestThread<bool> Start(Action body) => new(() =>
    {
        body();
        return true;
    });

    /// <summary>Runs <paramref name="body"/>(0..count-1) on <paramref name="count"/> threads and joins them all.</summary>
    public static void RunAll(int count, Action<int> body)
    {
        var threads = Enumerable.Range(0, count).Select(i => Start(() => body(i))).ToList();
        foreach (var t in threads)
            t.Join();
    }
}
