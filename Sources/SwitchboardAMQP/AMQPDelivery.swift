import Synchronization

/// One message handed to a consumer. Settle it exactly once with `ack`, `nack` or `reject`.
public struct AMQPDelivery: Sendable {
    public var body: [UInt8]
    public var properties: AMQPProperties
    public var exchange: String
    public var routingKey: String
    /// True when the broker delivered this message before (to this or another consumer).
    public var redelivered: Bool
    /// The broker's number for this delivery on its channel.
    public var deliveryTag: UInt64
    /// When this process read the delivery from the broker's socket.
    public var receivedAt: ContinuousClock.Instant
    /// Which connection this delivery came over, counting reconnects: it changes after every reconnect,
    /// so a consumer can tell that the broker may have handed its queue to someone else in between.
    public var connectionGeneration: UInt64 { generation }

    let shared: ConnectionShared
    let channel: UInt16
    let generation: UInt64
    /// The subscription this delivery belongs to. Channel numbers are reused, so a late settle
    /// must not reach a later consumer on the same channel.
    let subscription: UInt64

    /// Tells the broker the message is handled. With `multiple`, also every earlier unsettled delivery
    /// of this consumer.
    ///
    /// Settling does not wait for the network: the I/O thread sends it with its next batch.
    /// Throws `AMQPError.deliveryChannelGone` when the connection this delivery came over was lost
    /// (the broker redelivers the message), and `.connectionClosed` after `close()`.
    public func ack(multiple: Bool = false) throws(AMQPError) {
        try settle(.ack(multiple: multiple))
    }

    /// Acks a delivery of a stream queue. That only gives the consumer credit for more: a stream keeps its
    /// messages whatever the ack. So an ack that cannot go out, because the connection the delivery came over is
    /// gone (deliveries it buffered still arrive after a reconnect), is no error and is not thrown.
    public func ackStreamRead() {
        try? ack()
    }

    /// Tells the broker the message was not handled; with `requeue` it is delivered again,
    /// otherwise it is dead-lettered (or dropped when the queue has no dead-letter exchange).
    public func nack(requeue: Bool, multiple: Bool = false) throws(AMQPError) {
        try settle(.nack(multiple: multiple, requeue: requeue))
    }

    /// Like `nack` for this delivery alone.
    public func reject(requeue: Bool) throws(AMQPError) {
        try settle(.reject(requeue: requeue))
    }

    private func settle(_ settlement: Settlement) throws(AMQPError) {
        guard shared.generation.load(ordering: .relaxed) == generation else {
            throw .deliveryChannelGone(deliveryTag: deliveryTag)
        }
        let command = DriverCommand.settle(channel: channel, subscription: subscription, deliveryTag: deliveryTag, settlement)
        guard shared.submit(command) else { throw .connectionClosed }
    }
}

/// Deliveries from one queue, in order, as an `AsyncSequence`.
///
/// It survives reconnects: the connection subscribes again with the same queue, prefetch and arguments
/// (a queue the broker has not recovered yet is waited for, up to `ConnectionDriver.missingQueueGrace`).
/// A consumer of a stream from a fixed offset resumes at the last offset it received: that record, read
/// again and not handed on, shows the stream is the one it was reading. It ends with an error when the broker
/// cancels the subscription (queue deleted) or closes its channel, or when another record is at that offset
/// or none comes within the configuration's `operationTimeout` (`AMQPError.streamNotResumed`: the stream was
/// deleted and declared again meanwhile), and without one on `cancel()` or `AMQPConnection.close()`.
/// Dropping the sequence or cancelling its iterating task cancels it too.
public struct AMQPConsumer: AsyncSequence, Sendable {
    public typealias Element = AMQPDelivery
    public typealias Failure = any Error

    /// The queue or stream it reads.
    public let queue: String
    let stream: DeliveryStream
    let shared: ConnectionShared
    let key: ConsumerKey

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: DeliveryStream.AsyncIterator
        var burst: [AMQPDelivery] = []
        var position = 0

        public mutating func next() async throws -> AMQPDelivery? {
            while position == burst.count {
                guard let next = try await base.next() else { return nil }
                burst = next
                position = 0
            }
            defer { position += 1 }
            return burst[position]
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator())
    }

    /// Stops the subscription and closes its channel; unsettled deliveries go back to the queue. Does nothing
    /// once the consumer has ended.
    public func cancel() {
        _ = shared.submit(.cancelConsumer(key))
    }
}
