using Postmaster.Shmem.Errors;
using Postmaster.Shmem.Instance;
using Postmaster.Shmem.Layout;

namespace Postmaster.Supervision;

/// <summary>Validates the shared structures the supervisor reads (header, index, every module's header).</summary>
public static class ShmemValidation
{
    /// <summary>What is wrong, or null.</summary>
    public static string? Problem(InstanceShmem shmem)
    {
        try
        {
            ref var h = ref shmem.Main.Header;
            if (h.Magic != MainHeader.ExpectedMagic)
                return $"main segment header: wrong magic number 0x{h.Magic:X8} (expected 0x{MainHeader.ExpectedMagic:X8})";
            if (h.LayoutVersion != MainHeader.CurrentLayoutVersion || h.HeaderSize != MainHeader.Size ||
                h.TotalSize != shmem.Main.Mapping.Size)
                return $"main segment header: layout version {h.LayoutVersion}, header size {h.HeaderSize}, total size {h.TotalSize} " +
                       $"do not match this segment ({shmem.Main.Mapping.Size} bytes)";
            InstanceShmem.Wrap(shmem.Main); // finds every module in the index again and checks its header
            if (shmem.WorkerStatus.Validate() is { } ws)
                return ws;
            return null;
        }
        catch (ShmemException e)
        {
            return e.Detail is null ? e.Message : $"{e.Message} ({e.Detail})";
        }
    }
}
