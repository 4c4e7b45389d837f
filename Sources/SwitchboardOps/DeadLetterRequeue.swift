import SwitchboardAMQP
import SwitchboardRuntime

/// Republishes dead letters to their original exchange and routing key, each confirmed before it is removed
/// from `switchboard.dead-letters`.
///
/// A republished message keeps its original `user_id` (an agent command's sender), so the Router judges it
/// as it would have judged the original. The broker accepts another user's `user_id` only from a user with
/// the `impersonator` tag; without it, it closes the channel and nothing is removed.
public enum DeadLetterRequeue {
    public enum Selection: Sendable, Equatable {
        case all
        case id(String)
    }

    public enum Outcome: Sendable {
        case requeued(DeadLetter, exchange: String)
        /// Left in the queue: it names no original exchange to publish to.
        case noOriginalExchange(DeadLetter)
    }

    /// Reads the queue once through (until a letter seen in this run comes round again, or it is quiet for
    /// `quietPeriod`) and requeues what `selection` picks; the letters passed over go back to the queue.
    public static func run(
        on connection: AMQPConnection, _ selection: Selection, quietPeriod: Duration
    ) async throws -> [Outcome] {
        let publisher = try await connection.publisher(confirmWindow: 1)
        let consumer = try await connection.consume(queue: ServiceTopology.deadLetterQueue, prefetch: 100)
        var outcomes: [Outcome] = []
        var passedOver: [AMQPDelivery] = []
        // A message that is still bad comes back to the queue's tail once republished: meeting one of this
        // run's messages again means every message that was there at the start has been seen.
        var seen: Set<DeadLetter.Identity> = []
        try await QuietDrain.read(consumer, quietPeriod: quietPeriod) { delivery in
            let letter = DeadLetter(delivery)
            guard seen.insert(letter.identity).inserted else {
                passedOver.append(delivery)
                return .stop
            }
            if case .id(let id) = selection, letter.messageID != id {
                passedOver.append(delivery)
                return .keepReading
            }
            guard let exchange = letter.originalExchange else {
                outcomes.append(.noOriginalExchange(letter))
                passedOver.append(delivery)
                return .keepReading
            }
            try await publisher.publish(
                delivery.body, exchange: exchange, routingKey: letter.originalRoutingKey,
                properties: letter.republishedProperties, mandatory: true)
            try delivery.ack()
            outcomes.append(.requeued(letter, exchange: exchange))
            return selection == .all ? .keepReading : .stop
        }
        for delivery in passedOver { try delivery.nack(requeue: true) }
        return outcomes
    }
}
