namespace Postmaster.TestChild.Scenarios;

/// <summary>A scenario's "key=value" arguments. A missing or malformed value throws, naming the key.</summary>
internal sealed class ScenarioArgs
{
    private readonly Dictionary<string, string> _values;

    private ScenarioArgs(Dictionary<string, string> values)
    {
        _values = values;
    }

    public static ScenarioArgs Parse(IEnumerable<string> args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var arg in args)
        {
            int eq = arg.IndexOf('=');
            if (eq <= 0)
                throw new ArgumentException($"argument \"{arg}\" is not key=value");
            values[arg[..eq]] = arg[(eq + 1)..];
        }
        return new ScenarioArgs(values);
    }

    public string String(string key) =>
        _values.TryGetValue(key, out var v) ? v : throw new ArgumentException($"missing argument {key}=");

    public string String(string key, string fallback) => _values.GetValueOrDefault(key, fallback);

    public long Long(string key) =>
        long.TryParse(String(key), out long v) ? v : throw new ArgumentException($"argument {key}= is not a number");

    public int Int(string key) => checked((int)Long(key));

    public IReadOnlyList<string> List(string key) => String(key).Split(',', StringSplitOptions.RemoveEmptyEntries);
}
