// Child process for multi-process tests: runs one named scenario given on the command line.
Console.Error.WriteLine("TestChild: no scenarios yet");
return 2;
