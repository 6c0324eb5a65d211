using System.Text.Json;

namespace Postmaster.Testing.Internal;

/// <summary>
/// Reads <c>status --json</c>, <c>shmem --json</c> and <c>spawn --json</c> (camelCase). Tolerant of what a later
/// product version adds: unknown fields are skipped, and a state word the harness does not know reads as
/// <c>Unknown</c> rather than failing. Reflection-based on purpose: a source-generated reader sets every init-only
/// property the document lacks to null, where these records keep their defaults (no workers, an empty name).
/// </summary>
internal static class InspectionJson
{
    private static readonly JsonSerializerOptions s_options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new ServerStateConverter(), new WorkerStateConverter(), new BackendStateConverter() },
    };

    /// <summary>Parses <paramref name="json"/> printed by <paramref name="what"/>; a malformed document is a
    /// <see cref="ClusterException"/> quoting it.</summary>
    public static T Parse<T>(string json, string what)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(json, s_options) ?? throw new ClusterException($"{what} printed null:\n{json}");
        }
        catch (JsonException e)
        {
            throw new ClusterException($"{what} printed JSON the harness cannot read ({e.Message}):\n{json}", e);
        }
    }
}
