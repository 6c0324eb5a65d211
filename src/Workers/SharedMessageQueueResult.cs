namespace Postmaster.Workers;

/// <summary>What a <see cref="SharedMessageQueue"/> operation came to (PostgreSQL's shm_mq_result).</summary>
public enum SharedMessageQueueResult
{
    /// <summary>The message was sent, or received whole.</summary>
    Success = 0,

    /// <summary>Not now: the ring is full (send) or holds no complete message (receive), and the call was a
    /// <c>Try</c> call or its timeout passed. Nothing is lost: a message partly sent must be sent again, unchanged,
    /// before any other (it continues where it stopped); a message partly received continues with the next receive.</summary>
    WouldBlock = 1,

    /// <summary>The peer detached or died (or an expected peer died before it attached), or this queue was detached.
    /// Final: every later call says the same. A receiver first gets every message the sender completed before it
    /// went; a message it left half-written is dropped.</summary>
    Detached = 2,

    /// <summary>Receive into a buffer only: the next message is longer than the buffer. It stays queued; the returned
    /// length is the size of the buffer it needs.</summary>
    BufferTooSmall = 3,
}
