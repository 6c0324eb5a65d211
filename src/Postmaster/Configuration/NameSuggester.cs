namespace Postmaster.Configuration;

/// <summary>
/// Finds the known name closest to a misspelt one, for "Did you mean ...?" hints. Distance is the optimal string
/// alignment distance (insertions, deletions, substitutions and swaps of two neighbouring characters each cost 1), so
/// <c>shared_memroy_type</c> is 1 away from <c>shared_memory_type</c>. A name is suggested only when it is close: within
/// a quarter of the misspelt name's length, at least 1 and at most <see cref="MaxDistance"/>.
/// </summary>
internal static class NameSuggester
{
    /// <summary>Largest distance ever suggested; farther names are more likely to confuse than to help.</summary>
    public const int MaxDistance = 3;

    private const int LengthPerAllowedEdit = 4;

    /// <summary>The closest candidate within the allowed distance (ties: the first in ordinal order), or null.</summary>
    public static string? Suggest(string name, IEnumerable<string> candidates)
    {
        int allowed = Math.Clamp(name.Length / LengthPerAllowedEdit, 1, MaxDistance);
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (string candidate in candidates.Order(StringComparer.Ordinal))
        {
            int distance = Distance(name, candidate);
            if (distance <= allowed && distance < bestDistance)
            {
                best = candidate;
                bestDistance = distance;
            }
        }

        return best;
    }

    /// <summary>Optimal string alignment distance between <paramref name="a"/> and <paramref name="b"/>.</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (int j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                int best = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    best = Math.Min(best, d[i - 2, j - 2] + 1);
                }

                d[i, j] = best;
            }
        }

        return d[a.Length, b.Length];
    }
}
