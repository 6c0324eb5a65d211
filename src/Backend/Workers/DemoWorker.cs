using Postmaster.Workers;

namespace Postmaster.Backend.Workers;

/// <summary>
/// "demo": visible work through shared memory. Every demo backend adds to a per-slot counter and to a shared total
/// in the named allocation "demo counters", under the named lock "demo", ten times a second, and logs the total
/// every <see cref="ReportEvery"/>. `postmaster shmem` lists the allocation; `status` lists the backends.
/// </summary>
internal sealed class DemoWorker : IBackgroundWorker
{
    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);
    public static readonly TimeSpan ReportEvery = TimeSpan.FromSeconds(30);
    private const int MaxSlots = 1024;

    public int Run(WorkerContext context)
    {
        var counters = context.InitStruct("demo counters", sizeof(long) * (MaxSlots + 1), out _);
        var lk = context.NamedLock("demo");
        long nextReport = Environment.TickCount64 + (long)ReportEvery.TotalMilliseconds;
        while (!context.WaitUntilStopping(Tick))
        {
            long total;
            using (context.Locks.Hold(lk, LWLockMode.Exclusive))
            {
                total = ++counters.Ref<long>(0);
                counters.Ref<long>(sizeof(long) * (1 + context.Slot % MaxSlots))++;
            }
            if (Environment.TickCount64 >= nextReport)
            {
                nextReport += (long)ReportEvery.TotalMilliseconds;
                context.Log($"demo worker \"{context.Name}\" (slot {context.Slot}): shared total is {total}");
            }
        }
        return 1;
    }
}
