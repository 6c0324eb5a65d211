namespace KeyValue;

/// <summary>The client broke the protocol: the server replies <c>-ERR Protocol error: ...</c> and closes the
/// connection, as Redis does. The message is that reply's text without "-ERR ".</summary>
/// <param name="detail">What was wrong, e.g. "invalid bulk length".</param>
public sealed class RespProtocolException(string detail) : Exception("Protocol error: " + detail);
