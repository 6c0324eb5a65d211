using Postmaster.Shmem.Errors;

namespace Postmaster.Shmem.Queues;

/// <summary>The sender's side of <see cref="MessageQueue"/>: everything here runs under the send gate.</summary>
internal sealed unsafe partial class MessageQueue
{
    // Sender state (under _sendGate). _written runs ahead of the header's BytesWritten by what is not published yet.
    private long _written;
    private long _publishedWritten;
    private long _readSeen;           // the receiver's BytesRead as last read
    private bool _sendInProgress;     // a message was begun and not finished (WouldBlock, timeout, cancellation)
    private long _sendLength;
    private bool _sendLengthDone;
    private long _sendDone;           // payload bytes of the message in progress already in the ring

    /// <summary>
    /// Sends <paramref name="message"/> whole (PostgreSQL's shm_mq_send): its length word, then its bytes, in as many
    /// chunks as the free space allows, waiting for the receiver to make room. With <paramref name="nowait"/>, or when
    /// <paramref name="deadline"/> (a <see cref="Locks.Deadline"/>) passes, it returns
    /// <see cref="MessageQueueResult.WouldBlock"/> instead of waiting; what was written stays written, and the caller
    /// must call again with the same message (same length; the bytes already sent are not read again) before
    /// sending another. <see cref="OperationCanceledException"/> from <paramref name="cancellationToken"/> leaves the
    /// same state. <see cref="MessageQueueResult.Detached"/> when the receiver detached or died, or this view was
    /// detached. A receiver that has not attached yet is no obstacle: the message waits in the ring for it.
    /// </summary>
    public MessageQueueResult Send(ReadOnlySpan<byte> message, bool nowait, long deadline, CancellationToken cancellationToken)
    {
        lock (_sendGate)
        {
            if (_detached)
                return MessageQueueResult.Detached;
            RequireRole(SenderRole);
            if (message.Length > MaxMessageSize)
                throw new ArgumentException($"cannot send a message of {message.Length} bytes through a {StructureName}",
                    nameof(message)); // the receiver could not hold it (at most MaxMessageSize bytes)
            if (_detaching || Volatile.Read(ref _h->Detached) != 0)
                return MessageQueueResult.Detached; // before the partial-message rule: nothing more is sent anyway
            if (!_sendInProgress)
            {
                _sendInProgress = true;
                _sendLength = message.Length;
                _sendLengthDone = false;
                _sendDone = 0;
            }
            else if (message.Length != _sendLength)
            {
                throw new InvalidOperationException(
                    $"a message of {_sendLength} bytes is partly sent: send it again, unchanged, before a message of {message.Length} bytes");
            }
            var wait = new WaitState(deadline, cancellationToken, receiver: false);
            try
            {
                return SendLocked(message, nowait, ref wait);
            }
            finally
            {
                wait.Dispose();
                if (_sendInProgress && !_sendLengthDone)
                    _sendInProgress = false; // nothing of it reached the ring: the caller may send another message
            }
        }
    }

    private MessageQueueResult SendLocked(ReadOnlySpan<byte> message, bool nowait, ref WaitState wait)
    {
        while (true)
        {
            if (_detaching || Volatile.Read(ref _h->Detached) != 0)
                return MessageQueueResult.Detached;
            long free = _ringSize - (_written - _readSeen);
            if (free == 0)
            {
                _readSeen = ReadBytesRead();
                free = _ringSize - (_written - _readSeen);
                if (free == 0)
                {
                    PublishWritten(); // the receiver must see everything before this side waits
                    var r = AwaitSpace(nowait, ref wait);
                    if (r != MessageQueueResult.Success)
                        return r;
                    continue;
                }
            }
            long position = _written % _ringSize;
            if (!_sendLengthDone)
            {
                *(long*)(_ring + position) = _sendLength; // 8 bytes free at an 8-aligned position never wrap
                _written += LengthWordSize;
                _sendLengthDone = true;
                if (_sendLength == 0)
                    break;
                continue;
            }
            long remaining = _sendLength - _sendDone;
            long chunk = Math.Min(Math.Min(free, remaining), Math.Min(_ringSize - position, _chunk));
            message.Slice((int)_sendDone, (int)chunk).CopyTo(new Span<byte>(_ring + position, (int)chunk));
            _sendDone += chunk;
            // Only the message's last chunk can be shorter than a multiple of 8; its padding ends the message.
            _written += chunk == remaining ? AlignUp(chunk) : chunk;
            if (_sendDone == _sendLength)
                break;
            PublishWritten();
        }
        PublishWritten();
        _sendInProgress = false;
        return MessageQueueResult.Success;
    }

    /// <summary>Waits until the ring has free space (<see cref="MessageQueueResult.Success"/>), or says why not.</summary>
    private MessageQueueResult AwaitSpace(bool nowait, ref WaitState wait)
    {
        while (true)
        {
            if (_detaching || Volatile.Read(ref _h->Detached) != 0)
                return MessageQueueResult.Detached;
            long read = ReadBytesRead();
            _readSeen = read;
            if (_written - read < _ringSize)
                return MessageQueueResult.Success;
            if (nowait)
            {
                CheckPeer(ref wait, force: false);
                return Volatile.Read(ref _h->Detached) != 0 ? MessageQueueResult.Detached : MessageQueueResult.WouldBlock;
            }
            if (Sleep(ref wait, ref _h->BytesRead, read) == WaitOutcome.TimedOut)
                return MessageQueueResult.WouldBlock;
        }
    }

    /// <summary>The receiver's count, checked: a multiple of 8, not ahead of what was written, not more than a ring
    /// behind.</summary>
    private long ReadBytesRead()
    {
        long read = Volatile.Read(ref _h->BytesRead);
        if (read < 0 || read % Alignment != 0 || read > _publishedWritten || _written - read > _ringSize)
            throw new ShmemCorruptException($"{StructureName} is corrupt",
                $"The receiver's byte count {read} does not fit the sender's {_written} (ring of {_ringSize} bytes).");
        return read;
    }

    /// <summary>Makes the bytes written so far visible to the receiver (a full fence, then a look at its sleeping flag:
    /// see the class summary) and wakes it if it sleeps.</summary>
    private void PublishWritten()
    {
        if (_written == _publishedWritten)
            return;
        Interlocked.Exchange(ref _h->BytesWritten, _written);
        _publishedWritten = _written;
        if (Volatile.Read(ref _h->ReceiverSleeping) != 0)
            Wake(ref _h->ReceiverFutex);
    }
}
