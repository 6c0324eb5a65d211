namespace Postmaster.Configuration;

/// <summary>
/// Thrown by <see cref="ConfigLoader"/> when the configuration file or a <c>-c</c> option is invalid. It carries every
/// error found, not only the first; nothing from the invalid configuration is applied.
/// </summary>
public sealed class ConfigException : Exception
{
    public ConfigException(IReadOnlyList<ConfigError> errors)
        : base(Combine(errors))
    {
        if (errors.Count == 0)
        {
            throw new ArgumentException("internal error: a ConfigException needs at least one error", nameof(errors));
        }

        Errors = errors;
    }

    /// <summary>The errors in file line order, then the errors of <c>-c</c> options.</summary>
    public IReadOnlyList<ConfigError> Errors { get; }

    private static string Combine(IReadOnlyList<ConfigError> errors)
    {
        if (errors.Count == 1)
        {
            return errors[0].ToString();
        }

        var text = new System.Text.StringBuilder();
        text.Append(errors.Count).Append(" errors in configuration:");
        foreach (ConfigError error in errors)
        {
            text.AppendLine().Append(error);
        }

        return text.ToString();
    }
}
