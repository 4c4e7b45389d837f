import CRabbitMQ
import Glibc
import Synchronization

/// What a connection is doing, as callers can observe it.
public enum AMQPConnectionState: Sendable, Hashable {
    case connected
    /// The connection was lost; the I/O thread is trying again. `failedAttempts` counts failures since.
    case reconnecting(failedAttempts: Int)
    case closed
}

/// A message to publish, as `AMQPPublisher.publish(contentsOf:)` takes it.
public struct OutgoingMessage: Sendable {
    public var body: [UInt8]
    public var exchange: String
    public var routingKey: String
    public var properties: AMQPProperties
    /// When set, the broker returns the message if no queue takes it, and the publish fails.
    public var mandatory: Bool

    public init(
        body: [UInt8], exchange: String, routingKey: String, properties: AMQPProperties = AMQPProperties(),
        mandatory: Bool = false
    ) {
        self.body = body
        self.exchange = exchange
        self.routingKey = routingKey
        self.properties = properties
        self.mandatory = mandatory
    }
}

/// What a consumer subscribes with; kept to subscribe again after a reconnect.
struct ConsumerSpec: Sendable {
    var queue: String
    var prefetch: UInt16
    var exclusive: Bool
    var arguments: AMQPTable
    /// Declared before every subscription, the first and each after a reconnect, and forgotten with the
    /// consumer: for queues that live only as long as their consumer.
    var topology: Topology?
}

enum Settlement: Sendable {
    case ack(multiple: Bool)
    case nack(multiple: Bool, requeue: Bool)
    case reject(requeue: Bool)
}

/// Deliveries in bursts, as the I/O thread reads them; `AMQPConsumer` hands them out one by one.
typealias DeliveryStream = AsyncThrowingStream<[AMQPDelivery], any Error>

/// Requests from Swift callers to the I/O thread that owns the librabbitmq connection.
enum DriverCommand: Sendable {
    case declare(Topology, CheckedContinuation<Void, any Error>)
    /// A passive declare: the queue's ready messages and consumers, or `nil` when it does not exist.
    case queueStatus(queue: String, CheckedContinuation<AMQPConnection.QueueStatus?, any Error>)
    case openPublisher(window: Int, CheckedContinuation<UInt16, any Error>)
    case publish(channel: UInt16, OutgoingMessage, enqueuedAt: ContinuousClock.Instant, UnsafeContinuation<Void, any Error>)
    /// Resumed once, when every message of the batch is settled.
    case publishBatch(channel: UInt16, [OutgoingMessage], enqueuedAt: ContinuousClock.Instant, UnsafeContinuation<Void, any Error>)
    case consume(ConsumerSpec, DeliveryStream.Continuation, CheckedContinuation<ConsumerKey, any Error>)
    case cancelConsumer(ConsumerKey)
    case settle(channel: UInt16, subscription: UInt64, deliveryTag: UInt64, Settlement)
    case close(CheckedContinuation<Void, Never>?)
    /// From now on, what waits for a reconnect fails at once (see `AMQPConnection.stopWaitingForReconnects`).
    case stopWaitingForReconnects
}

/// A consumer's channel, and its number among the connection's consumers. The channel number alone does not
/// name it: once the consumer ends, another one may take that number.
struct ConsumerKey: Sendable, Equatable {
    let channel: UInt16
    let id: UInt64
}

/// The thread-safe meeting point of callers and the I/O thread: a command inbox with an eventfd
/// wake-up, and the connection's observable state.
final class ConnectionShared: Sendable {
    private struct Inbox {
        var commands: [DriverCommand] = []
        var isClosed = false
        /// Set by the I/O thread just before it sleeps in poll(2); only then does a command need
        /// the eventfd to wake it, so a busy thread costs callers no system call.
        var ioThreadSleeping = false
    }

    private struct Observed {
        var state: AMQPConnectionState = .connected
        var isBlocked = false
    }

    private let inbox = Locked(Inbox())
    private let observed = Locked(Observed())
    /// Counts connections made; a delivery remembers the one it came from, so a late ack can be refused.
    let generation = Atomic<UInt64>(0)
    let wakeDescriptor: Int32

    init() throws(AMQPError) {
        let descriptor = switchboard_wakeup_eventfd()
        guard descriptor >= 0 else {
            throw .protocolError("cannot create the I/O thread's wake-up descriptor: errno \(errno)")
        }
        wakeDescriptor = descriptor
    }

    deinit { Glibc.close(wakeDescriptor) }

    /// Queues a command for the I/O thread. Returns false once the connection is closed.
    func submit(_ command: DriverCommand) -> Bool {
        let mustWake: Bool? = inbox.withLock { inbox in
            guard !inbox.isClosed else { return nil }
            inbox.commands.append(command)
            defer { inbox.ioThreadSleeping = false }
            return inbox.ioThreadSleeping
        }
        guard let mustWake else { return false }
        if mustWake { wake() }
        return true
    }

    private func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeDescriptor, &one, MemoryLayout<UInt64>.size)
    }

    /// Swaps the queued commands into `buffer` (which must be empty), keeping both arrays' storage.
    /// The I/O thread is plainly awake when it calls this, so callers need not wake it.
    func takeCommands(into buffer: inout [DriverCommand]) {
        inbox.withLock { inbox in
            swap(&inbox.commands, &buffer)
            inbox.ioThreadSleeping = false
        }
    }

    /// Refuses further commands and hands back those still queued.
    func closeInbox() -> [DriverCommand] {
        inbox.withLock { inbox in
            inbox.isClosed = true
            defer { inbox.commands = [] }
            return inbox.commands
        }
    }

    /// Called by the I/O thread before poll(2). False when commands arrived meanwhile: then it
    /// must not sleep, because their callers saw it awake and did not signal the eventfd.
    func prepareToSleep() -> Bool {
        inbox.withLock { inbox in
            guard inbox.commands.isEmpty else { return false }
            inbox.ioThreadSleeping = true
            return true
        }
    }

    func clearWakeUp() {
        var count: UInt64 = 0
        _ = Glibc.read(wakeDescriptor, &count, MemoryLayout<UInt64>.size)
    }

    var state: AMQPConnectionState { observed.withLock { $0.state } }
    var isBlocked: Bool { observed.withLock { $0.isBlocked } }

    func setState(_ state: AMQPConnectionState) { observed.withLock { $0.state = state } }
    func setBlocked(_ blocked: Bool) { observed.withLock { $0.isBlocked = blocked } }
}
