using System.Runtime.InteropServices;

namespace Postmaster.Shmem.Interop;

internal static unsafe partial class Libc
{
    public const int IPC_PRIVATE = 0;
    public const int IPC_CREAT = 0x200;   // 01000
    public const int IPC_EXCL = 0x400;    // 02000
    public const int IPC_RMID = 0;
    public const int IPC_SET = 1;
    public const int IPC_STAT = 2;
    public const int SHM_HUGETLB = 0x800; // 04000

    /// <summary>Size of struct shmid_ds and the offsets read from it (same on x86-64 and arm64).</summary>
    public const int ShmidDsSize = 112;
    public const int ShmidDsKeyOffset = 0;    // shm_perm.__key
    public const int ShmidDsUidOffset = 4;
    public const int ShmidDsGidOffset = 8;
    public const int ShmidDsCuidOffset = 12;
    public const int ShmidDsModeOffset = 20;
    public const int ShmidDsSegszOffset = 48;
    public const int ShmidDsAtimeOffset = 56;
    public const int ShmidDsCtimeOffset = 72;
    public const int ShmidDsCpidOffset = 80;
    public const int ShmidDsLpidOffset = 84;
    public const int ShmidDsNattchOffset = 88;

    // returns -1 on failure
    [LibraryImport(Name, SetLastError = true)]
    public static partial int shmget(int key, nuint size, int shmflg);

    // returns (void*)-1 on failure
    [LibraryImport(Name, SetLastError = true)]
    public static partial nint shmat(int shmid, nint shmaddr, int shmflg);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int shmdt(nint shmaddr);

    [LibraryImport(Name, SetLastError = true)]
    public static partial int shmctl(int shmid, int cmd, byte* buf);

    // for callers without an unsafe context (the benchmark's raw baseline): buf is a struct shmid_ds* or 0
    [LibraryImport(Name, EntryPoint = "shmctl", SetLastError = true)]
    public static partial int shmctl(int shmid, int cmd, nint buf);
}
