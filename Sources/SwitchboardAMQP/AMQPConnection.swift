import Foundation
import Logging
import Synchronization

/// A connection to one RabbitMQ broker, owned by a dedicated I/O thread (librabbitmq is not
/// thread-safe). Every method may be called from any task; calls become commands for that thread.
///
/// When the connection is lost, the thread reconnects with backoff, declares every topology again
/// and resubscribes every consumer. Publishes that were waiting for a confirm fail with
/// `AMQPError.connectionLost` (the caller may publish again); new ones wait for the reconnect, up to
/// `AMQPConfiguration.reconnectWaitTimeout`. All errors thrown are `AMQPError`.
///
/// ```swift
/// let connection = try await AMQPConnection.connect(AMQPConfiguration(url: "amqp://u:p@127.0.0.1:5672/vhost"), logger: logger)
/// try await connection.declare(topology)
/// let publisher = try await connection.publisher(confirmWindow: 256)
/// try await publisher.publish(body, exchange: "x", routingKey: "k", properties: properties, mandatory: true)
/// for try await delivery in try await connection.consume(queue: "q", prefetch: 256) { try delivery.ack() }
/// await connection.close()
/// ```
public final class AMQPConnection: Sendable {
    let shared: ConnectionShared
    public let configuration: AMQPConfiguration

    private init(shared: ConnectionShared, configuration: AMQPConfiguration) {
        self.shared = shared
        self.configuration = configuration
    }

    /// Connects, logs in and opens the virtual host. The first attempt's failure is thrown as is
    /// (wrong password, unknown vhost, broker down); reconnecting only starts once connected.
    public static func connect(_ configuration: AMQPConfiguration, logger: Logger) async throws -> AMQPConnection {
        let shared = try ConnectionShared()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let driver = ConnectionDriver(configuration: configuration, logger: logger, shared: shared)
            let thread = Thread {
                driver.run(reportingFirstConnection: continuation)
            }
            thread.name = "amqp-io \(configuration.host):\(configuration.port)"
            thread.start()
        }
        return AMQPConnection(shared: shared, configuration: configuration)
    }

    deinit {
        _ = shared.submit(.close(nil))
    }

    /// The connection's current state.
    public var state: AMQPConnectionState { shared.state }

    /// Counts connection losses and reconnects, as `AMQPDelivery.connectionGeneration` does. The same value
    /// before a publish and after its confirm means it went over the connection that was current before.
    public var generation: UInt64 { shared.generation.load(ordering: .relaxed) }

    /// True while the broker blocks publishing (connection.blocked, from a memory or disk alarm).
    /// Publishes wait meanwhile, up to `AMQPConfiguration.blockedPublishTimeout`.
    public var isBlocked: Bool { shared.isBlocked }

    /// Declares the exchanges, then the queues, then the bindings, and remembers the topology to
    /// declare it again after a reconnect. Called while disconnected, it waits for the reconnect (up to
    /// `AMQPConfiguration.reconnectWaitTimeout`); if the broker then refuses it by closing the connection,
    /// it fails with the broker's reason and the next reconnect goes on without it.
    public func declare(_ topology: Topology) async throws {
        try await withCheckedThrowingContinuation { continuation in
            if !shared.submit(.declare(topology, continuation)) {
                continuation.resume(throwing: AMQPError.connectionClosed)
            }
        }
    }

    /// How many messages are ready in `queue` now and how many consumers it has, or `nil` when there is no
    /// such queue (a passive declare).
    public func queueStatus(_ queue: String) async throws -> QueueStatus? {
        try await withCheckedThrowingContinuation { continuation in
            if !shared.submit(.queueStatus(queue: queue, continuation)) {
                continuation.resume(throwing: AMQPError.connectionClosed)
            }
        }
    }

    public struct QueueStatus: Sendable, Equatable {
        /// Messages ready for delivery (not those delivered and not yet settled).
        public var messageCount: Int
        public var consumerCount: Int
    }

    /// Opens a channel in confirm mode. At most `confirmWindow` publishes are unconfirmed at once;
    /// further callers wait their turn.
    public func publisher(confirmWindow: Int = 256) async throws -> AMQPPublisher {
        precondition(confirmWindow > 0, "the confirm window must be at least 1")
        let channel = try await withCheckedThrowingContinuation { continuation in
            if !shared.submit(.openPublisher(window: confirmWindow, continuation)) {
                continuation.resume(throwing: AMQPError.connectionClosed)
            }
        }
        return AMQPPublisher(shared: shared, channel: channel)
    }

    /// Subscribes to `queue` on its own channel with manual acknowledgements and `prefetch` unacked
    /// deliveries at most. `arguments` go with basic.consume (see `StreamOffset` for streams).
    ///
    /// `declaring` is declared before the subscription, again before each resubscription after a reconnect,
    /// and forgotten when the consumer ends, unlike `declare(_:)`, which is kept for the connection's life:
    /// for a queue that lives as long as its consumer (an auto-delete queue of one signed-in user, say).
    public func consume(
        queue: String, prefetch: UInt16 = 256, exclusive: Bool = false, arguments: AMQPTable = [:],
        declaring topology: Topology? = nil
    ) async throws -> AMQPConsumer {
        precondition(prefetch > 0, "manual acknowledgement needs a prefetch of at least 1")
        let spec = ConsumerSpec(
            queue: queue, prefetch: prefetch, exclusive: exclusive, arguments: arguments, topology: topology)
        // Prefetch bounds what is in the buffer, so it never grows without limit.
        let (stream, streamContinuation) = DeliveryStream.makeStream()
        let shared = self.shared
        let key = try await withCheckedThrowingContinuation { continuation in
            if !shared.submit(.consume(spec, streamContinuation, continuation)) {
                continuation.resume(throwing: AMQPError.connectionClosed)
            }
        }
        streamContinuation.onTermination = { termination in
            if case .cancelled = termination { _ = shared.submit(.cancelConsumer(key)) }
        }
        return AMQPConsumer(queue: queue, stream: stream, shared: shared, key: key)
    }

    /// From now on, while the connection is lost, publishes and declarations fail at once with
    /// `AMQPError.notConnected` instead of waiting for the reconnect; the ones waiting now fail too. For a
    /// service that is stopping: what it still has in flight may finish while the broker is there, but
    /// nothing waits for the broker to come back. Reconnecting goes on.
    public func stopWaitingForReconnects() {
        _ = shared.submit(.stopWaitingForReconnects)
    }

    /// Closes every channel and the connection. Consumers end; publishes not yet confirmed fail with
    /// `AMQPError.connectionClosed`, so await your publishes first.
    public func close() async {
        await withCheckedContinuation { continuation in
            if !shared.submit(.close(continuation)) { continuation.resume() }
        }
    }
}

/// Where a stream consumer starts reading (`x-stream-offset`).
public enum StreamOffset: Sendable, Hashable {
    case first
    case last
    case next
    case offset(Int64)
    /// Seconds since the Unix epoch.
    case timestamp(UInt64)

    /// The consumer argument that says where a stream read begins, and the header in which the broker tells
    /// where a delivered record is in its stream.
    public static let name = "x-stream-offset"

    /// Where a delivered record is in its stream, from its headers; `nil` for a message not read from a stream.
    public static func position(in headers: AMQPTable) -> Int64? {
        headers[name]?.intValue
    }

    /// The consumer arguments of a read that begins here.
    public var consumerArguments: AMQPTable { [Self.name: argument] }

    /// The value of the `x-stream-offset` consumer argument.
    public var argument: AMQPFieldValue {
        switch self {
        case .first: .string("first")
        case .last: .string("last")
        case .next: .string("next")
        case .offset(let offset): .int(offset)
        case .timestamp(let seconds): .timestamp(seconds)
        }
    }
}

/// Publishes with publisher confirms over one channel of a connection.
public struct AMQPPublisher: Sendable {
    let shared: ConnectionShared
    let channel: UInt16

    /// Publishes one message and returns once the broker has confirmed it.
    ///
    /// Throws `AMQPError.publishNacked` when the broker refuses it, `.publishReturned` when it is
    /// `mandatory` and no queue takes it, `.connectionLost` when the connection died before the
    /// confirm (publish again if duplicates are acceptable), `.blockedTimeout` / `.notConnected`
    /// when the broker blocked or stayed away for too long, and `.channelClosed` (and its 403/404
    /// siblings) when the broker closed the channel over it, e.g. for an unknown exchange.
    public func publish(
        _ body: [UInt8], exchange: String, routingKey: String,
        properties: AMQPProperties = AMQPProperties(), mandatory: Bool = false
    ) async throws {
        let message = OutgoingMessage(
            body: body, exchange: exchange, routingKey: routingKey, properties: properties, mandatory: mandatory)
        let enqueuedAt = ContinuousClock.now
        try await withUnsafeThrowingContinuation { continuation in
            if !shared.submit(.publish(channel: channel, message, enqueuedAt: enqueuedAt, continuation)) {
                continuation.resume(throwing: AMQPError.connectionClosed)
            }
        }
    }

    /// Publishes every message of `messages` in order over this channel, pipelined within the confirm
    /// window, and returns once the broker has confirmed them all. Cheaper than one `publish` per
    /// message: the whole batch costs one suspension and one wake-up, however many messages it holds.
    ///
    /// When any message fails, this waits until every message of the batch is settled and then throws
    /// the error of the earliest failing message in the batch's order, with the same meanings as
    /// `publish` (`.publishNacked`, `.publishReturned` for a mandatory unroutable one, `.connectionLost`,
    /// `.blockedTimeout`, `.notConnected`, `.channelClosed`...). Messages before it were confirmed; later
    /// ones may or may not have been, so a caller that publishes again must accept duplicates.
    /// An empty batch returns at once.
    public func publish(contentsOf messages: [OutgoingMessage]) async throws {
        guard !messages.isEmpty else { return }
        let enqueuedAt = ContinuousClock.now
        try await withUnsafeThrowingContinuation { continuation in
            if !shared.submit(.publishBatch(channel: channel, messages, enqueuedAt: enqueuedAt, continuation)) {
                continuation.resume(throwing: AMQPError.connectionClosed)
            }
        }
    }
}
