import Foundation

/// A published message's `id` with the message, for the kinds whose value types leave the id out
/// (Router, workstation and outbound messages get theirs when published).
public struct Identified<Message: Hashable & Sendable>: Hashable, Sendable {
    public var id: MessageID
    public var message: Message

    public init(id: MessageID, message: Message) {
        self.id = id
        self.message = message
    }
}

/// The project's one JSON setup for the wire contract and for snapshots: encoding with sorted keys
/// (stable bytes for the same value), decoding through the contract types' validating `Codable`.
public enum WireCodec {
    /// The major version this code speaks (`v` in every body).
    public static let contractVersion = 1

    /// Larger bodies are rejected before parsing.
    public static let maxBodyBytes = 64 * 1024

    // MARK: Encoding

    public static func encode(_ message: InboundMessage) throws(ContractError) -> Data {
        try encodeValue(message, type: message.body.type)
    }

    public static func encode(_ event: RouterEvent, id: MessageID) throws(ContractError) -> Data {
        try encodeValue(WithID(id: id, message: event), type: event.body.type)
    }

    public static func encode(_ event: WorkstationEvent, id: MessageID) throws(ContractError) -> Data {
        try encodeValue(WithID(id: id, message: event), type: event.body.type)
    }

    public static func encode(_ message: OutboundMessage, id: MessageID) throws(ContractError) -> Data {
        try encodeValue(WithID(id: id, message: message), type: message.body.type)
    }

    // MARK: Decoding

    /// Decodes and validates a `switchboard.in` body. With `properties`, also checks the AMQP-level rules
    /// (`WireProperties.check`) and takes `publisher` from the AMQP `user_id`; with the `routingKey` it was
    /// published under, checks that it is the message's type (`checkRoutingKey`).
    public static func decodeInbound(
        _ body: Data, properties: WireProperties? = nil, routingKey: String? = nil
    ) throws(ContractError) -> InboundMessage {
        var message = try decodeValue(InboundMessage.self, from: body)
        if let properties {
            try properties.check(id: message.id, type: message.body.type, desk: message.desk)
            message.publisher = properties.userID
        }
        try checkRoutingKey(routingKey, type: message.body.type)
        return message
    }

    /// Decodes and validates a `switchboard.events` body; with `properties`, also checks the AMQP-level rules,
    /// and with the `routingKey` it was published under, that it is the event's type.
    public static func decodeRouterEvent(
        _ body: Data, properties: WireProperties? = nil, routingKey: String? = nil
    ) throws(ContractError) -> Identified<RouterEvent> {
        let event = try decodeValue(WithID<RouterEvent>.self, from: body)
        try properties?.check(id: event.id, type: event.message.body.type, desk: event.message.desk)
        try checkRoutingKey(routingKey, type: event.message.body.type)
        return Identified(id: event.id, message: event.message)
    }

    /// On `switchboard.in` and `switchboard.events` the routing key is the message's type. The broker's topic
    /// permissions go by the routing key (a gateway may publish agent commands only), so a body of another type
    /// under an allowed key must not be taken as what it says it is.
    private static func checkRoutingKey(_ routingKey: String?, type: String) throws(ContractError) {
        if let routingKey, routingKey != type {
            throw ContractError(
                messageType: type, field: "routing key", problem: "must be the message type \"\(type)\", not \"\(routingKey)\"")
        }
    }

    /// Decodes and validates a `switchboard.workstations` body; with `properties`, also checks the AMQP-level rules.
    public static func decodeWorkstationEvent(_ body: Data, properties: WireProperties? = nil) throws(ContractError)
        -> Identified<WorkstationEvent>
    {
        let event = try decodeValue(WithID<WorkstationEvent>.self, from: body)
        try properties?.check(id: event.id, type: event.message.body.type, desk: event.message.desk)
        return Identified(id: event.id, message: event.message)
    }

    /// Decodes and validates a `switchboard.outbound` body; with `properties`, also checks the AMQP-level rules.
    public static func decodeOutbound(_ body: Data, properties: WireProperties? = nil) throws(ContractError)
        -> Identified<OutboundMessage>
    {
        let message = try decodeValue(WithID<OutboundMessage>.self, from: body)
        try properties?.check(id: message.id, type: message.message.body.type, desk: message.message.desk)
        return Identified(id: message.id, message: message.message)
    }

    // MARK: Snapshots

    /// Snapshot bytes for any Codable state, with the same encoder as the wire.
    public static func encodeSnapshot(_ value: some Encodable) throws -> Data {
        try encoder.encode(value)
    }

    public static func decodeSnapshot<Value: Decodable>(_ type: Value.Type, from data: Data) throws -> Value {
        try decoder.decode(type, from: data)
    }

    // MARK: Internals

    // Both are immutable once set up and safe to share between threads.
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    fileprivate static let decoder = JSONDecoder()

    private static func encodeValue(_ value: some Encodable, type: String) throws(ContractError) -> Data {
        do {
            return try encoder.encode(value)
        } catch {
            // Only a non-finite number inside `attributes` can make encoding fail.
            throw ContractError(messageType: type, problem: "cannot be encoded as JSON: \(error)")
        }
    }

    private static func decodeValue<Value: Decodable>(_ type: Value.Type, from body: Data) throws(ContractError)
        -> Value
    {
        guard body.count <= maxBodyBytes else {
            throw ContractError(problem: "body is \(body.count) bytes, over the limit of \(maxBodyBytes) bytes")
        }
        do {
            return try decoder.decode(type, from: body)
        } catch let error as ContractError {
            throw error
        } catch let error as DecodingError {
            throw ContractError(error, messageType: nil)
        } catch {
            throw ContractError(problem: "body is not valid JSON")
        }
    }
}

/// A message whose Codable form leaves out `id`, with the id beside it in the same JSON object.
private struct WithID<Message: Codable & Hashable & Sendable>: Codable {
    var id: MessageID
    var message: Message

    init(id: MessageID, message: Message) {
        self.id = id
        self.message = message
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: FieldKey.self)
        message = try Message(from: decoder)
        let type = try container.required("type", as: String.self)
        id = try Envelope.reading(type) { try container.required("id", as: MessageID.self) }
    }

    func encode(to encoder: any Encoder) throws {
        try message.encode(to: encoder)
        var container = encoder.container(keyedBy: FieldKey.self)
        try container.encode(id, forKey: "id")
    }
}

// MARK: - Routing

/// The four exchanges of the public contract.
public enum ContractExchange: String, Hashable, Sendable, CaseIterable {
    case inbound = "switchboard.in"
    case events = "switchboard.events"
    case workstations = "switchboard.workstations"
    case outbound = "switchboard.outbound"
}

extension InboundMessage {
    /// On `switchboard.in` the routing key is the message type.
    public var routingKey: String { body.type }
}

extension RouterEvent {
    /// On `switchboard.events` the routing key is the event type.
    public var routingKey: String { body.type }
}

extension WorkstationEvent {
    /// `<desk>.<agent>`, so a gateway binds one key per signed-in agent or `<desk>.*` for a whole desk.
    public var routingKey: String { "\(desk).\(agent)" }
}

extension OutboundMessage {
    /// `<desk>.<type>`.
    public var routingKey: String { "\(desk).\(body.type)" }
}

// MARK: - Rejected input

/// What can still be read from a body that breaks the contract: each field only when it is itself valid.
/// With it, a shell can answer the agent behind a bad command with `command.rejected` (PROTOCOL.md,
/// "Bad input") although the message as a whole could not be decoded.
public struct SalvagedFields: Hashable, Sendable {
    public var id: MessageID?
    public var type: String?
    public var desk: DeskID?
    public var agent: AgentID?
    public var conversation: ConversationID?

    public init(
        id: MessageID? = nil, type: String? = nil, desk: DeskID? = nil, agent: AgentID? = nil,
        conversation: ConversationID? = nil
    ) {
        self.id = id
        self.type = type
        self.desk = desk
        self.agent = agent
        self.conversation = conversation
    }
}

extension SalvagedFields: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: FieldKey.self)
        self.init(
            id: try? container.optional("id"), type: try? container.optional("type"), desk: try? container.optional("desk"),
            agent: try? container.optional("agent"), conversation: try? container.optional("conversation"))
    }
}

extension WireCodec {
    /// The valid envelope and agent fields of `body`; all `nil` when it is not a JSON object or is over the size limit.
    public static func salvage(_ body: Data) -> SalvagedFields {
        guard body.count <= maxBodyBytes else { return SalvagedFields() }
        return (try? decoder.decode(SalvagedFields.self, from: body)) ?? SalvagedFields()
    }
}
