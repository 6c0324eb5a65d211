using System.Text;
using Postmaster.Shmem.Text;
using Xunit;

namespace Postmaster.Tests.Units;

/// <summary>Utf8Text must give exactly what Encoding.UTF8 gives, on its ASCII path and off it.</summary>
public sealed class Utf8TextTests
{
    public static TheoryData<string> Texts => new() { "", "pool", "/tmp/pm data/x.dll:N.T", "données", "数据", "a\u0080b", "emoji 🐘" };

    [Theory]
    [MemberData(nameof(Texts))]
    public void Conversions_match_Encoding_UTF8(string text)
    {
        byte[] expected = Encoding.UTF8.GetBytes(text);
        Assert.Equal(Utf8Text.IsAscii(text), expected.Length == text.Length && expected.All(b => b < 0x80));
        Assert.Equal(expected.Length, Utf8Text.GetByteCount(text));
        Assert.Equal(expected, Utf8Text.GetBytes(text));
        var buffer = new byte[expected.Length + 3];
        Assert.Equal(expected.Length, Utf8Text.GetBytes(text, buffer));
        Assert.Equal(expected, buffer[..expected.Length]);
        Assert.Equal(text, Utf8Text.GetString(expected));
        Assert.Equal(expected.Append((byte)0), Utf8Text.ToNulTerminated(text, stackalloc byte[4]).ToArray());
        Assert.Equal(expected.Append((byte)0), Utf8Text.ToNulTerminated(text, stackalloc byte[64]).ToArray());
    }

    [Fact]
    public void A_destination_that_is_too_small_is_an_error()
    {
        Assert.Throws<ArgumentException>(() => Utf8Text.GetBytes("abcd", new byte[3]));
        Assert.Throws<ArgumentException>(() => Utf8Text.GetBytes("数据", new byte[5]));
    }
}
