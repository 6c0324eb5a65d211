using System.Runtime.InteropServices;

namespace Postmaster.Shmem.Interop;

/// <summary>
/// Architecture-dependent numbers (syscall numbers, open flags, struct offsets), chosen once at startup.
/// Values for x86-64 were checked with offsetof() on the build machine; arm64 follows the asm-generic layout.
/// An unsupported architecture fails here, at type initialisation, not halfway through a call.
/// </summary>
internal sealed class NativeArch
{
    public static readonly NativeArch Current = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => new NativeArch(sysFutex: 202, sysPidfdOpen: 434, oDirectory: 0x10000, oNoFollow: 0x20000,
            statSize: 144, statDev: 0, statIno: 8, statMode: 24, statUid: 28, statSize_: 48),
        Architecture.Arm64 => new NativeArch(sysFutex: 98, sysPidfdOpen: 434, oDirectory: 0x4000, oNoFollow: 0x8000,
            statSize: 128, statDev: 0, statIno: 8, statMode: 16, statUid: 24, statSize_: 48),
        var a => throw new PlatformNotSupportedException($"postmaster supports x86-64 and arm64 Linux, not {a}"),
    };

    private NativeArch(int sysFutex, int sysPidfdOpen, int oDirectory, int oNoFollow,
        int statSize, int statDev, int statIno, int statMode, int statUid, int statSize_)
    {
        SysFutex = sysFutex;
        SysPidfdOpen = sysPidfdOpen;
        O_DIRECTORY = oDirectory;
        O_NOFOLLOW = oNoFollow;
        StatStructSize = statSize;
        StatDevOffset = statDev;
        StatInoOffset = statIno;
        StatModeOffset = statMode;
        StatUidOffset = statUid;
        StatSizeOffset = statSize_;
    }

    public int SysFutex { get; }
    public int SysPidfdOpen { get; }
    public int O_DIRECTORY { get; }
    public int O_NOFOLLOW { get; }
    public int StatStructSize { get; }
    public int StatDevOffset { get; }
    public int StatInoOffset { get; }
    public int StatModeOffset { get; }
    public int StatUidOffset { get; }
    public int StatSizeOffset { get; }
}
