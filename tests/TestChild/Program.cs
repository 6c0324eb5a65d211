using Postmaster.TestChild.Scenarios;

// TestChild <scenario> [key=value...]: a child process for the multi-process tests (the RemoteExecutor analogue).
// Each scenario lives in its own file under Scenarios/ and is registered here with one line. A scenario prints
// lines to stdout for the test to synchronise on ("ready", "holding", ...) and returns its exit code.
// Exit codes: 0 = scenario succeeded, 1 = scenario failed (message on stderr), 2 = usage error.
var scenarios = new Dictionary<string, Func<ScenarioArgs, int>>(StringComparer.Ordinal)
{
    ["lock-counter"] = LockCounterScenario.Run,
    ["lock-record"] = LockRecordScenario.Run,
    ["lock-hold"] = LockHoldScenario.Run,
    ["lock-timeout"] = LockTimeoutScenario.Run,
    ["cv-wait"] = ConditionVariableWaitScenario.Run,
    ["dsm"] = DsmScenario.Run,
    ["registry"] = RegistryScenario.Run,
    ["area"] = AreaScenario.Run,
    ["queue"] = QueueScenario.Run,
};

if (args.Length == 0 || !scenarios.TryGetValue(args[0], out var scenario))
{
    Console.Error.WriteLine($"usage: TestChild <scenario> [key=value...]; scenarios: {string.Join(", ", scenarios.Keys.Order())}");
    return 2;
}
try
{
    return scenario(ScenarioArgs.Parse(args[1..]));
}
catch (Exception e)
{
    Console.Error.WriteLine($"TestChild {args[0]}: {e}");
    return 1;
}
