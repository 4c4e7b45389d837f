/// Turns one consumer channel's settlements into as few frames as the protocol allows: plain acks
/// that complete the run of settled tags from the lowest one are held back and sent as a single
/// `basic.ack(multiple)` when `flush` runs, once per batch of commands. Everything else goes out
/// at once, after the held ack, so the broker sees settlements in the order they were made.
///
/// A multiple ack settles every outstanding tag up to its own, and its own tag must still be
/// outstanding (RabbitMQ closes the channel with 406 "unknown delivery tag" otherwise). So the held
/// ack names the highest tag held back, never a tag settled by a frame of its own: tags below it
/// that were settled that way are no longer outstanding, and it passes over them.
struct AckCoalescer {
    enum Frame: Equatable {
        case ack(deliveryTag: UInt64, multiple: Bool)
        case nack(deliveryTag: UInt64, multiple: Bool, requeue: Bool)
        case reject(deliveryTag: UInt64, requeue: Bool)
    }

    /// Every tag below this one is settled; delivery tags on a channel start at 1.
    private(set) var lowestUnsettled: UInt64 = 1
    private var settledAbove: Set<UInt64> = []
    /// The highest tag whose plain ack is held back, not yet sent.
    private var heldUpTo: UInt64?

    mutating func settle(_ deliveryTag: UInt64, _ settlement: Settlement, send: (Frame) -> Void) {
        switch settlement {
        case .ack(multiple: false) where deliveryTag == lowestUnsettled:
            markSettled(deliveryTag)
            heldUpTo = deliveryTag
        case .ack(let multiple):
            flush(send: send)
            send(.ack(deliveryTag: deliveryTag, multiple: multiple))
            multiple ? markSettled(upTo: deliveryTag) : markSettled(deliveryTag)
        case .nack(let multiple, let requeue):
            flush(send: send)
            send(.nack(deliveryTag: deliveryTag, multiple: multiple, requeue: requeue))
            multiple ? markSettled(upTo: deliveryTag) : markSettled(deliveryTag)
        case .reject(let requeue):
            flush(send: send)
            send(.reject(deliveryTag: deliveryTag, requeue: requeue))
            markSettled(deliveryTag)
        }
    }

    /// Sends the held ack, if any.
    mutating func flush(send: (Frame) -> Void) {
        guard let heldUpTo else { return }
        self.heldUpTo = nil
        send(.ack(deliveryTag: heldUpTo, multiple: true))
    }

    private mutating func markSettled(_ deliveryTag: UInt64) {
        if deliveryTag == lowestUnsettled {
            advance()
        } else if deliveryTag > lowestUnsettled {
            settledAbove.insert(deliveryTag)
        }
    }

    private mutating func markSettled(upTo deliveryTag: UInt64) {
        guard deliveryTag >= lowestUnsettled else { return }
        lowestUnsettled = deliveryTag
        settledAbove = settledAbove.filter { $0 > deliveryTag }
        advance()
    }

    private mutating func advance() {
        lowestUnsettled += 1
        while settledAbove.remove(lowestUnsettled) != nil { lowestUnsettled += 1 }
    }
}
