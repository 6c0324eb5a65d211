namespace Postmaster.Configuration;

/// <summary>A unit suffix accepted after a number, with its value in the base unit of the setting kind
/// (bytes for sizes, milliseconds for times). The multiplier is a decimal so that "us" (0.001 ms) is exact.</summary>
public sealed record SettingUnit(string Name, decimal Multiplier);
