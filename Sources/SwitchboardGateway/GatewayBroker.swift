import Foundation
import Logging
import Synchronization
import SwitchboardAMQP
import SwitchboardCommon
import SwitchboardRuntime

/// The gateway's side of the broker: one connection, one confirmed publisher for agent commands, and
/// one queue per signed-in agent bound to `switchboard.workstations` with `<desk>.<agent>`.
public final class GatewayBroker: Sendable {
    private struct Connected {
        var connection: AMQPConnection
        var publisher: AMQPPublisher
    }

    public let amqp: AMQPConfiguration
    public let instanceName: String
    /// How long an agent's queues may stay unused. The gateway cancels the consumer of the agent's event
    /// queue when the grace period ends, so the broker deletes that queue then (auto-delete), and this only
    /// catches one that never got its consumer (a gateway that stopped between declaring and consuming).
    /// The presence queue (`holdPresence`) is not auto-delete and goes only this way.
    public let queueExpiryMilliseconds: Int
    private let logger: Logger
    private let connected = Mutex<Connected?>(nil)

    public init(amqp: AMQPConfiguration, instanceName: String, graceMilliseconds: Int, logger: Logger) {
        var amqp = amqp
        amqp.connectionName = amqp.connectionName ?? "switchboard-gateway \(instanceName)"
        self.amqp = amqp
        self.instanceName = instanceName
        self.queueExpiryMilliseconds = graceMilliseconds + 60_000
        self.logger = logger
    }

    /// The broker user, which the broker checks against the `user_id` of every command published.
    public var user: String { amqp.user }

    /// Connects, trying again with the configuration's backoff until it works or the task is cancelled.
    public func connect() async throws {
        var failedAttempts = 0
        while true {
            do {
                let connection = try await AMQPConnection.connect(amqp, logger: logger)
                let publisher = try await connection.publisher(confirmWindow: 64)
                connected.withLock { $0 = Connected(connection: connection, publisher: publisher) }
                logger.info("connected to the broker", metadata: ["amqp.url": "\(amqp.redactedDescription)"])
                return
            } catch {
                failedAttempts += 1
                let delay = amqp.reconnectBackoff.delay(afterFailedAttempts: failedAttempts)
                logger.warning(
                    "cannot connect to the broker yet",
                    metadata: ["error": "\(error)", "retry.in": "\(delay)"])
                try await Task.sleep(for: delay)
            }
        }
    }

    /// Calls `reconnected` after each reconnect to the broker, until the task is cancelled. The connection
    /// reconnects by itself (declaring again and consuming again what it had); this looks every `interval`,
    /// far less than a reconnect takes.
    public func watchReconnects(every interval: Duration = .milliseconds(200), _ reconnected: @Sendable () async -> Void)
        async throws
    {
        func current() -> (generation: UInt64, isConnected: Bool)? {
            connected.withLock { $0.map { ($0.connection.generation, $0.connection.state == .connected) } }
        }
        var seen = current()?.generation
        while true {
            try await Task.sleep(for: interval)
            guard let now = current(), now.isConnected, now.generation != seen else { continue }
            if seen != nil { await reconnected() }
            seen = now.generation
        }
    }

    public var isConnected: Bool {
        connected.withLock { $0?.connection.state == .connected }
    }

    public var isAlive: Bool {
        connected.withLock { connected in
            guard let connected else { return true }
            return connected.connection.state != .closed
        }
    }

    /// The queue of one agent on this gateway instance.
    public func queueName(for identity: AgentIdentity) -> String {
        "switchboard.gateway.\(instanceName).\(identity.desk).\(identity.agent)"
    }

    /// Declares and binds the agent's queue, and consumes it.
    public func subscribe(_ identity: AgentIdentity) async throws -> AMQPConsumer {
        let connection = try currentConnection()
        let queue = queueName(for: identity)
        let topology = Topology(
            queues: [
                Topology.Queue(
                    queue, autoDelete: true, arguments: ["x-expires": .int(Int64(queueExpiryMilliseconds))])
            ],
            bindings: [
                Topology.Binding(
                    from: ContractExchange.workstations.rawValue, to: .queue(queue), routingKey: identity.routingKey)
            ])
        // Declared with the consumer, so it is declared again after a reconnect and forgotten at sign-off.
        return try await connection.consume(queue: queue, prefetch: 64, declaring: topology)
    }

    /// The queue every gateway with an open page of the agent consumes, and no one publishes to: its
    /// consumer count says whether a page of the agent is open on any gateway.
    public static func presenceQueueName(for identity: AgentIdentity) -> String {
        "switchboard.gateway.presence.\(identity.desk).\(identity.agent)"
    }

    /// Consumes the agent's presence queue, for as long as this gateway has a page of the agent open.
    /// Not auto-delete: a page that closes and opens again at once would otherwise race the deletion that
    /// its own cancel set off. The broker deletes it once no gateway used it for the expiry. Declared only when
    /// missing: gateways with other grace periods (and so other expiries) share it.
    public func holdPresence(_ identity: AgentIdentity) async throws -> AMQPConsumer {
        let queue = Self.presenceQueueName(for: identity)
        let topology = Topology(queues: [
            Topology.Queue(queue, arguments: ["x-expires": .int(Int64(queueExpiryMilliseconds))], keepsExisting: true)
        ])
        return try await currentConnection().consume(queue: queue, prefetch: 1, declaring: topology)
    }

    /// How many gateways have a page of the agent open (this one not counted once it let go).
    public func gatewaysWithPagesOpen(_ identity: AgentIdentity) async throws -> Int {
        try await currentConnection().queueStatus(Self.presenceQueueName(for: identity))?.consumerCount ?? 0
    }

    /// Publishes one agent command on `switchboard.in` with the gateway's broker user as `user_id`,
    /// and returns once the broker confirmed it.
    public func publish(_ message: InboundMessage) async throws {
        try await currentPublisher().publish(WireCodec.outgoing(message).publishedAs(user))
    }

    public func close() async {
        let current = connected.withLock { connected in
            defer { connected = nil }
            return connected?.connection
        }
        await current?.close()
    }

    /// The contract's view of a delivery's AMQP properties, for `WireCodec`'s checks.
    public static func wireProperties(of delivery: AMQPDelivery) -> WireProperties {
        let properties = delivery.properties
        return WireProperties(
            contentType: properties.contentType, messageID: properties.messageID, type: properties.type,
            timestamp: properties.timestamp.map { Int64(clamping: $0) }, deliveryMode: properties.deliveryMode?.rawValue,
            deskHeader: properties.headers["desk"]?.stringValue, userID: properties.userID)
    }

    private static let notYetConnected = AMQPError.notConnected(
        waited: .zero, lastError: "the gateway has not connected to the broker yet")

    private func currentConnection() throws -> AMQPConnection {
        guard let connection = connected.withLock({ $0?.connection }) else { throw Self.notYetConnected }
        return connection
    }

    private func currentPublisher() throws -> AMQPPublisher {
        guard let publisher = connected.withLock({ $0?.publisher }) else { throw Self.notYetConnected }
        return publisher
    }
}
