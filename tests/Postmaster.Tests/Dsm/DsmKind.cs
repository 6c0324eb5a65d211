using Postmaster.Shmem.Dsm;

namespace Postmaster.Tests.Dsm;

/// <summary>The engine's <see cref="DsmType"/> as a theory parameter (cast to convert): xunit runs public test methods,
/// and the engine's types are internal.</summary>
public enum DsmKind
{
    Posix = (int)DsmType.Posix,
    SysV = (int)DsmType.SysV,
    Mmap = (int)DsmType.Mmap,
}
