using System.Text;

namespace Postmaster.Shmem.Text;

/// <summary>
/// UTF-8 conversions for the names, paths and texts kept in shared memory, with a hand-written path for ASCII (nearly
/// all of them) and <see cref="Encoding.UTF8"/> for the rest, so the results are identical. Every backend converts a
/// few such texts while it starts; the first use of Encoding.UTF8 alone costs an idle backend about 0.2 MB (the
/// encoding's types, stubs and tables), which this keeps out of the common case.
/// </summary>
internal static class Utf8Text
{
    public static bool IsAscii(string text)
    {
        foreach (char c in text)
            if (c >= 0x80)
                return false;
        return true;
    }

    public static int GetByteCount(string text) => IsAscii(text) ? text.Length : Encoding.UTF8.GetByteCount(text);

    public static byte[] GetBytes(string text)
    {
        if (!IsAscii(text))
            return Encoding.UTF8.GetBytes(text);
        var bytes = new byte[text.Length];
        for (int i = 0; i < text.Length; i++)
            bytes[i] = (byte)text[i];
        return bytes;
    }

    /// <summary>Encodes into <paramref name="destination"/>; returns the byte count. Throws ArgumentException when it
    /// does not fit (as Encoding.GetBytes does).</summary>
    public static int GetBytes(string text, Span<byte> destination)
    {
        if (!IsAscii(text))
            return Encoding.UTF8.GetBytes(text, destination);
        if (text.Length > destination.Length)
            throw new ArgumentException($"the destination ({destination.Length} bytes) is too small for {text.Length} bytes", nameof(destination));
        for (int i = 0; i < text.Length; i++)
            destination[i] = (byte)text[i];
        return text.Length;
    }

    /// <summary>The NUL-terminated UTF-8 form of <paramref name="text"/> (for a system call), in
    /// <paramref name="buffer"/> when it fits, else in a new array.</summary>
    public static Span<byte> ToNulTerminated(string text, Span<byte> buffer)
    {
        int length = GetByteCount(text);
        var target = length < buffer.Length ? buffer[..(length + 1)] : new byte[length + 1];
        GetBytes(text, target);
        target[length] = 0;
        return target;
    }

    public static string GetString(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length == 0)
            return "";
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] >= 0x80)
                return Encoding.UTF8.GetString(bytes);
            chars[i] = (char)bytes[i];
        }
        return new string(chars);
    }
}
