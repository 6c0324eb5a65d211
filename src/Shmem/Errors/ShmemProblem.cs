namespace Postmaster.Shmem.Errors;

/// <summary>
/// The wording of validation results (<c>string? Validate()</c> on every shared structure): one line, starting with
/// the structure's name, saying what is wrong and what was expected, e.g.
/// <c>backend slot array: wrong magic number 0x00000000 (expected 0x504D4253)</c>. Validation never throws; a null
/// result means the structure passed.
/// </summary>
internal static class ShmemProblem
{
    public static string Magic(string structure, uint found, uint expected) =>
        $"{structure}: wrong magic number 0x{found:X8} (expected 0x{expected:X8})";

    public static string Version(string structure, uint found, uint expected) =>
        $"{structure}: wrong layout version {found} (expected {expected})";

    public static string TooSmall(string structure, long size, long needed) =>
        $"{structure}: region of {size} bytes is too small to hold its header ({needed} bytes)";

    /// <summary>The first check of every header: room for it, magic, layout version.</summary>
    public static string? Header(string structure, long regionSize, long headerSize, uint magic, uint expectedMagic,
        uint version, uint expectedVersion)
    {
        if (regionSize < headerSize)
            return TooSmall(structure, regionSize, headerSize);
        if (magic != expectedMagic)
            return Magic(structure, magic, expectedMagic);
        if (version != expectedVersion)
            return Version(structure, version, expectedVersion);
        return null;
    }

    /// <summary>Prefixes a structure's own wording ("Magic number ... does not match ...") with its name.</summary>
    public static string? Named(string structure, string? problem) => problem is null ? null : $"{structure}: {problem}";
}
