namespace Postmaster.Tests.Support;

/// <summary>One backend as `status --json` reports it.</summary>
public sealed record BackendRow(int Pid, int Slot, string Name, string Entry, string State, int Restarts, int DsmSegments);
