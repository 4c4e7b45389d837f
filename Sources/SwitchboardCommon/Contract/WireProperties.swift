import Foundation

/// The AMQP-level parts of a contract message (PROTOCOL.md, "Every message"), without any AMQP types:
/// the AMQP layer copies them in and out.
public struct WireProperties: Hashable, Sendable {
    public static let jsonContentType = "application/json"
    public static let persistentDeliveryMode: UInt8 = 2

    public var contentType: String?
    public var messageID: String?
    /// The AMQP `type` property.
    public var type: String?
    /// The AMQP `timestamp`: whole seconds since the Unix epoch.
    public var timestamp: Int64?
    public var deliveryMode: UInt8?
    /// The `desk` header.
    public var deskHeader: String?
    /// The broker-validated `user_id` of the publisher.
    public var userID: String?

    public init(
        contentType: String? = nil, messageID: String? = nil, type: String? = nil, timestamp: Int64? = nil,
        deliveryMode: UInt8? = nil, deskHeader: String? = nil, userID: String? = nil
    ) {
        self.contentType = contentType
        self.messageID = messageID
        self.type = type
        self.timestamp = timestamp
        self.deliveryMode = deliveryMode
        self.deskHeader = deskHeader
        self.userID = userID
    }

    /// The properties every publisher in the project sets: JSON content type, persistent, the body's
    /// `id` as `message_id`, its `type`, its `desk` as header, and its `at` (in seconds) as timestamp.
    public static func outgoing(id: MessageID, type: String, desk: DeskID, at: Instant) -> WireProperties {
        let seconds = at.millisecondsSinceEpoch / 1000 - (at.millisecondsSinceEpoch % 1000 < 0 ? 1 : 0)
        return WireProperties(
            contentType: jsonContentType, messageID: id.rawValue, type: type, timestamp: seconds,
            deliveryMode: persistentDeliveryMode, deskHeader: desk.rawValue)
    }

    /// Checks a received message's properties against its decoded body.
    ///
    /// Hard rejections: a `desk` header that is absent or differs from the body's `desk` (shards are
    /// chosen by that header, so without it the message may have reached the wrong owner); and any
    /// present `content_type`, `message_id` or `type` that disagrees with the body.
    ///
    /// Tolerated: an absent `content_type`, `message_id` or `type` (the body is authoritative and was
    /// parsed), an absent `timestamp` (the body's `at` is the time that counts), and an absent or
    /// non-persistent `delivery_mode` (a transient message is the publisher's own risk, not a malformed one).
    public func check(id: MessageID, type bodyType: String, desk: DeskID) throws(ContractError) {
        if let contentType, !Self.isJSON(contentType) {
            throw ContractError(
                messageType: bodyType, field: "property content_type",
                problem: "must be \(Self.jsonContentType), not \"\(contentType)\"")
        }
        if let messageID, messageID != id.rawValue {
            throw ContractError(
                messageType: bodyType, field: "property message_id",
                problem: "must equal the body's id \"\(id)\", not \"\(messageID)\"")
        }
        if let type, type != bodyType {
            throw ContractError(
                messageType: bodyType, field: "property type",
                problem: "must equal the body's type \"\(bodyType)\", not \"\(type)\"")
        }
        guard let deskHeader else {
            throw ContractError(messageType: bodyType, field: "header desk", problem: "is required")
        }
        if deskHeader != desk.rawValue {
            throw ContractError(
                messageType: bodyType, field: "header desk",
                problem: "must equal the body's desk \"\(desk)\", not \"\(deskHeader)\"")
        }
    }

    /// `application/json`, ignoring case and parameters such as `; charset=utf-8`.
    private static func isJSON(_ contentType: String) -> Bool {
        let mediaType = contentType.split(separator: ";", maxSplits: 1).first ?? ""
        return mediaType.trimmingCharacters(in: .whitespaces).lowercased() == jsonContentType
    }
}

/// Everything a publisher needs for one contract message: where it goes, its body and its properties.
public struct WireMessage: Hashable, Sendable {
    public var exchange: ContractExchange
    public var routingKey: String
    public var body: Data
    public var properties: WireProperties

    public init(exchange: ContractExchange, routingKey: String, body: Data, properties: WireProperties) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.properties = properties
    }
}

extension WireCodec {
    public static func outgoing(_ message: InboundMessage) throws(ContractError) -> WireMessage {
        WireMessage(
            exchange: .inbound, routingKey: message.routingKey, body: try encode(message),
            properties: .outgoing(id: message.id, type: message.body.type, desk: message.desk, at: message.at))
    }

    public static func outgoing(_ event: RouterEvent, id: MessageID) throws(ContractError) -> WireMessage {
        WireMessage(
            exchange: .events, routingKey: event.routingKey, body: try encode(event, id: id),
            properties: .outgoing(id: id, type: event.body.type, desk: event.desk, at: event.at))
    }

    public static func outgoing(_ event: WorkstationEvent, id: MessageID) throws(ContractError) -> WireMessage {
        WireMessage(
            exchange: .workstations, routingKey: event.routingKey, body: try encode(event, id: id),
            properties: .outgoing(id: id, type: event.body.type, desk: event.desk, at: event.at))
    }

    public static func outgoing(_ message: OutboundMessage, id: MessageID) throws(ContractError) -> WireMessage {
        WireMessage(
            exchange: .outbound, routingKey: message.routingKey, body: try encode(message, id: id),
            properties: .outgoing(id: id, type: message.body.type, desk: message.desk, at: message.at))
    }
}
