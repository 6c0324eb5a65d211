using Postmaster.Shmem.Errors;

namespace Postmaster.Shmem.Queues;

/// <summary>The receiver's side of <see cref="MessageQueue"/>: everything here runs under the receive gate.</summary>
internal sealed unsafe partial class MessageQueue
{
    // Receiver state (under _receiveGate). _read runs ahead of the header's BytesRead by what is not given back yet.
    private long _read;
    private long _publishedRead;
    private long _writtenSeen;        // the sender's BytesWritten as last read
    private long _recvLength = -1;    // length of the message in progress (its length word consumed); -1: none
    private long _recvDone;           // its payload bytes copied out so far
    private byte[]? _recvPartial;     // where those bytes are kept between calls (an interrupted receive)

    /// <summary>
    /// Receives the next message into <paramref name="buffer"/> (PostgreSQL's shm_mq_receive, copying): Success with
    /// <paramref name="length"/> bytes in <c>buffer[..length]</c>. A message longer than the buffer gives
    /// <see cref="MessageQueueResult.BufferTooSmall"/> with its length and stays queued. WouldBlock (nowait, or the
    /// deadline passed) and cancellation keep what was received of a message; the next call goes on with it.
    /// Detached once the sender detached or died and no complete message is left, or this view was detached.
    /// </summary>
    public MessageQueueResult Receive(Span<byte> buffer, out int length, bool nowait, long deadline, CancellationToken cancellationToken) =>
        ReceiveCore(buffer, allocate: false, out length, out _, nowait, deadline, cancellationToken);

    /// <summary>Receives the next message into a new array of its exact length (see the buffer overload).</summary>
    public MessageQueueResult Receive(out byte[] message, bool nowait, long deadline, CancellationToken cancellationToken)
    {
        var r = ReceiveCore(default, allocate: true, out _, out var array, nowait, deadline, cancellationToken);
        message = array ?? [];
        return r;
    }

    private MessageQueueResult ReceiveCore(Span<byte> buffer, bool allocate, out int length, out byte[]? array, bool nowait,
        long deadline, CancellationToken cancellationToken)
    {
        length = 0;
        array = null;
        lock (_receiveGate)
        {
            if (_detached)
                return MessageQueueResult.Detached;
            RequireRole(ReceiverRole);
            var wait = new WaitState(deadline, cancellationToken, receiver: true);
            try
            {
                return ReceiveLocked(buffer, allocate, out length, out array, nowait, ref wait);
            }
            finally
            {
                wait.Dispose();
            }
        }
    }

    private MessageQueueResult ReceiveLocked(Span<byte> buffer, bool allocate, out int length, out byte[]? array, bool nowait,
        ref WaitState wait)
    {
        length = 0;
        array = null;
        if (_recvLength < 0)
        {
            var r = AwaitData(nowait, ref wait);
            if (r != MessageQueueResult.Success)
                return r;
            long word = *(long*)(_ring + _read % _ringSize); // 8-aligned: never wraps
            if (word < 0 || word > MaxMessageSize)
                throw new ShmemCorruptException($"{StructureName} is corrupt",
                    $"The message at byte {_read} has length {word} (at most {MaxMessageSize} is possible).");
            if (!allocate && word > buffer.Length)
            {
                length = (int)word; // not consumed: the next call sees the same message
                return MessageQueueResult.BufferTooSmall;
            }
            _read += LengthWordSize;
            _recvLength = word;
            _recvDone = 0;
        }
        else if (!allocate && _recvLength > buffer.Length)
        {
            length = (int)_recvLength;
            return MessageQueueResult.BufferTooSmall;
        }
        Span<byte> target;
        if (allocate)
        {
            _recvPartial ??= _recvLength == 0 ? [] : new byte[_recvLength]; // holds what an interruption keeps, too
            target = _recvPartial;
        }
        else
        {
            target = buffer[..(int)_recvLength];
            if (_recvDone > 0)
                _recvPartial.AsSpan(0, (int)_recvDone).CopyTo(target); // what an interrupted call kept
        }
        while (_recvDone < _recvLength)
        {
            long available = _writtenSeen - _read;
            if (available == 0)
            {
                _writtenSeen = ReadBytesWritten();
                available = _writtenSeen - _read;
                if (available == 0)
                {
                    PublishRead(); // give back what was consumed before this side waits
                    MessageQueueResult r;
                    try
                    {
                        r = AwaitData(nowait, ref wait);
                    }
                    catch (OperationCanceledException)
                    {
                        KeepPartial(target, allocate); // cancelled mid-message: the next call goes on from here
                        throw;
                    }
                    if (r != MessageQueueResult.Success)
                    {
                        KeepPartial(target, allocate);
                        return r;
                    }
                    continue;
                }
            }
            long position = _read % _ringSize;
            long remaining = _recvLength - _recvDone;
            long chunk = Math.Min(Math.Min(available, remaining), Math.Min(_ringSize - position, _chunk));
            new ReadOnlySpan<byte>(_ring + position, (int)chunk).CopyTo(target[(int)_recvDone..]);
            _recvDone += chunk;
            _read += chunk == remaining ? AlignUp(chunk) : chunk;
            if (_recvDone < _recvLength)
                PublishRead();
        }
        PublishRead();
        length = (int)_recvLength;
        array = allocate ? _recvPartial : null;
        _recvLength = -1;
        _recvDone = 0;
        _recvPartial = null;
        return MessageQueueResult.Success;
    }

    /// <summary>An interrupted receive keeps the bytes it copied into the caller's buffer (which the next call may not
    /// pass again) in its own array.</summary>
    private void KeepPartial(Span<byte> target, bool allocate)
    {
        if (allocate || _recvDone == 0)
            return;
        _recvPartial ??= new byte[_recvLength];
        target[..(int)_recvDone].CopyTo(_recvPartial);
    }

    /// <summary>Waits until the ring holds unread bytes (<see cref="MessageQueueResult.Success"/>), or says why not. The
    /// detached bits are read before the count: bytes published before the sender detached are always seen, so a
    /// message completed before its sender left is still delivered.</summary>
    private MessageQueueResult AwaitData(bool nowait, ref WaitState wait)
    {
        while (true)
        {
            if (_detaching)
                return MessageQueueResult.Detached;
            int detached = Volatile.Read(ref _h->Detached);
            long written = ReadBytesWritten();
            _writtenSeen = written;
            if (written != _read)
                return MessageQueueResult.Success;
            if (detached != 0)
                return MessageQueueResult.Detached;
            if (nowait)
            {
                PublishRead();
                if (CheckPeer(ref wait, force: false))
                    continue; // the sender is gone: one more look at what it left
                return MessageQueueResult.WouldBlock;
            }
            PublishRead();
            if (Sleep(ref wait, ref _h->BytesWritten, written) == WaitOutcome.TimedOut)
                return MessageQueueResult.WouldBlock;
        }
    }

    /// <summary>The sender's count, checked: a multiple of 8, not behind what was read, not more than a ring ahead.</summary>
    private long ReadBytesWritten()
    {
        long written = Volatile.Read(ref _h->BytesWritten);
        if (written % Alignment != 0 || written < _read || written - _publishedRead > _ringSize || written > MaxByteCount)
            throw new ShmemCorruptException($"{StructureName} is corrupt",
                $"The sender's byte count {written} does not fit the receiver's {_read} (ring of {_ringSize} bytes).");
        return written;
    }

    /// <summary>Gives the bytes consumed so far back to the sender (a full fence, then a look at its sleeping flag) and
    /// wakes it if it sleeps.</summary>
    private void PublishRead()
    {
        if (_read == _publishedRead)
            return;
        Interlocked.Exchange(ref _h->BytesRead, _read);
        _publishedRead = _read;
        if (Volatile.Read(ref _h->SenderSleeping) != 0)
            Wake(ref _h->SenderFutex);
    }
}
