import SwitchboardAMQP
import SwitchboardCommon

extension AMQPProperties {
    /// The AMQP form of a contract message's properties (`WireProperties.outgoing`): the one conversion
    /// every publisher of contract messages uses.
    public init(_ wire: WireProperties) {
        self.init(
            contentType: wire.contentType, headers: wire.deskHeader.map { ["desk": .string($0)] } ?? [:],
            deliveryMode: wire.deliveryMode.flatMap(AMQPProperties.DeliveryMode.init(rawValue:)),
            messageID: wire.messageID, timestamp: wire.timestamp.map { UInt64(clamping: $0) }, type: wire.type,
            userID: wire.userID)
    }
}

extension WireMessage {
    /// The message with the AMQP `user_id` of the broker user that publishes it: the broker refuses any other
    /// user, and the Router takes agent commands only from a `user_id` it allows for their desk.
    public func publishedAs(_ user: String) -> WireMessage {
        var message = self
        message.properties.userID = user
        return message
    }
}

extension AMQPPublisher {
    /// Publishes one contract message, mandatory (an unroutable message is an error, not a silent loss),
    /// and returns once the broker confirmed it.
    public func publish(_ message: WireMessage) async throws {
        try await publish(
            Array(message.body), exchange: message.exchange.rawValue, routingKey: message.routingKey,
            properties: AMQPProperties(message.properties), mandatory: true)
    }
}
