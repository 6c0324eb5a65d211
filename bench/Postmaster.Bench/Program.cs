if (args is ["dsm", ..]) { Postmaster.Bench.Suites.DsmSuite.Run(); return; }
if (args.Length > 0 && args[0] == "quick") Postmaster.Bench.StartupBench.Quick(); else Postmaster.Bench.StartupBench.Run();
