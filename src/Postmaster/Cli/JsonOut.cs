using System.Text;
using System.Text.Json;

namespace Postmaster.Cli;

/// <summary>Writes one indented JSON document to stdout (no reflection: trimming- and startup-friendly).</summary>
public static class JsonOut
{
    public static void Print(Action<Utf8JsonWriter> write)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            write(w);
        Console.WriteLine(Encoding.UTF8.GetString(ms.ToArray()));
    }
}
