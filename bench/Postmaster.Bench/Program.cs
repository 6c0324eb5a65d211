Postmaster.Bench.StartupBench.Run();
