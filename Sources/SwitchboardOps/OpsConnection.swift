import Foundation
import Logging
import SwitchboardAMQP
import SwitchboardCommon
import SwitchboardRuntime

/// How the ops tools reach the broker: one URL, from a flag or `SWITCHBOARD_AMQP_URL`, defaulting to the
/// local development node that `make up` starts.
public enum OpsConnection {
    public static let environmentKey = "SWITCHBOARD_AMQP_URL"
    public static let localNodeURL = "amqp://switchboard:switchboard@127.0.0.1:5673/switchboard"

    /// The flag's value, else the environment's, else the local node.
    public static func resolveURL(flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment)
        -> String
    {
        if let flag, !flag.isEmpty { return flag }
        if let fromEnvironment = environment[environmentKey], !fromEnvironment.isEmpty { return fromEnvironment }
        return localNodeURL
    }

    /// Connects once, with short waits: a command-line tool should fail fast and say why, not retry for minutes.
    public static func connect(url: String, name: String) async throws -> AMQPConnection {
        var configuration = try AMQPConfiguration(url: url)
        configuration.connectionName = name
        configuration.connectTimeout = .seconds(5)
        configuration.reconnectWaitTimeout = .seconds(5)
        var logger = Logger(label: "switchboard.\(name)")
        logger.logLevel = .critical
        return try await AMQPConnection.connect(configuration, logger: logger)
    }
}

/// Builds inbound messages with a fresh id and the current wall-clock time.
public struct InboundMessageFactory: Sendable {
    private let now: @Sendable () -> Instant
    private let newID: @Sendable () -> MessageID

    public init(
        now: @escaping @Sendable () -> Instant = WallClock.now,
        newID: @escaping @Sendable () -> MessageID = { try! MessageID(UUID().uuidString.lowercased()) }
    ) {
        self.now = now
        self.newID = newID
    }

    /// The message as it goes on the wire, checked by the same decoder the services use: a value out of
    /// range fails here with the contract's reason instead of ending up in the dead letters.
    public func message(desk: DeskID, _ body: InboundBody) throws(ContractError) -> WireMessage {
        let message = try WireCodec.outgoing(InboundMessage(id: newID(), desk: desk, at: now(), body: body))
        _ = try WireCodec.decodeInbound(message.body, properties: message.properties, routingKey: message.routingKey)
        return message
    }
}

public enum WallClock {
    @Sendable public static func now() -> Instant {
        Instant(millisecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)))
    }
}
