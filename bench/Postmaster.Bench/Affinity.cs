using System.Diagnostics;
using System.Runtime.Versioning;

namespace Postmaster.Bench;

/// <summary>
/// CPU pinning for two-process measurements. Unpinned, the scheduler sometimes puts two communicating processes on
/// one core (a cheap same-core switch) and sometimes on two (a cross-core wake-up, ~40 µs here), which makes
/// hand-off figures bimodal from run to run. Pinning the parent to <see cref="ParentCpu"/> and its helper to
/// <see cref="ChildCpu"/> always measures the cross-core case. On Linux the affinity set through
/// <see cref="Process.ProcessorAffinity"/> applies to the process's main thread, which is the one that measures.
/// </summary>
public sealed class Affinity : IDisposable
{
    public const int ParentCpu = 0;
    public const int ChildCpu = 1;

    private readonly nint? _saved;

    private Affinity(nint? saved)
    {
        _saved = saved;
    }

    /// <summary>True on Linux with at least two CPUs to pin to (otherwise nothing is pinned).</summary>
    [SupportedOSPlatformGuard("linux")]
    public static bool CanPin => OperatingSystem.IsLinux() && Environment.ProcessorCount >= 2;

    /// <summary>Pins this process's main thread to <see cref="ParentCpu"/> until Dispose.</summary>
    public static Affinity PinParent()
    {
        if (!CanPin)
            return new Affinity(null);
        using var self = Process.GetCurrentProcess();
        nint saved = self.ProcessorAffinity;
        self.ProcessorAffinity = (nint)(1L << ParentCpu);
        return new Affinity(saved);
    }

    /// <summary>Pins a helper process to <see cref="ChildCpu"/>.</summary>
    public static void PinChild(Process child)
    {
        if (CanPin)
            child.ProcessorAffinity = (nint)(1L << ChildCpu);
    }

    public void Dispose()
    {
        if (_saved is not { } saved || !CanPin)
            return;
        using var self = Process.GetCurrentProcess();
        self.ProcessorAffinity = saved;
    }
}
