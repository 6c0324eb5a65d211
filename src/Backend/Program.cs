// Worker host. The backends issue turns this into the EXEC_BACKEND child: read the parameter block,
// attach the main segment, claim the slot, run the worker, run the exit callbacks.
Console.Error.WriteLine("pm-backend: backends are not implemented yet");
return 1;
