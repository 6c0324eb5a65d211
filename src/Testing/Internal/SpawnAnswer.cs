namespace Postmaster.Testing.Internal;

/// <summary><c>spawn --json</c>'s answer.</summary>
internal sealed record SpawnAnswer(int Pid, int Slot, long Generation);
