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

    public struct Report: Sendable {
        public var outcomes: [Outcome] = []
        /// Reading stopped with `DeadLetter.readLimit` letters passed over, all held: the letters after them
        /// were not read.
        public var stoppedAtReadLimit = false
    }

    /// Reads the queue once through (until a letter seen in this run comes round again, it is quiet for
    /// `quietPeriod`, or `DeadLetter.readLimit` letters are passed over) and requeues what `selection` picks;
    /// the letters passed over go back to the queue.
    public static func run(
        on connection: AMQPConnection, _ selection: Selection, quietPeriod: Duration
    ) async throws -> Report {
        let publisher = try await connection.publisher(confirmWindow: 1)
        let consumer = try await connection.consume(
            queue: ServiceTopology.deadLetterQueue, prefetch: UInt16(DeadLetter.readLimit))
        var report = Report()
        var passedOver: [AMQPDelivery] = []
        // The broker delivers no more than the prefetch unsettled, so a full hand means the reading is over.
        func passOver(_ delivery: AMQPDelivery) -> QuietDrain.Next {
            passedOver.append(delivery)
            report.stoppedAtReadLimit = passedOver.count >= DeadLetter.readLimit
            return report.stoppedAtReadLimit ? .stop : .keepReading
        }
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
                return passOver(delivery)
            }
            guard let exchange = letter.originalExchange else {
                report.outcomes.append(.noOriginalExchange(letter))
                return passOver(delivery)
            }
            try await publisher.publish(
                delivery.body, exchange: exchange, routingKey: letter.originalRoutingKey,
                properties: letter.republishedProperties, mandatory: true)
            try delivery.ack()
            report.outcomes.append(.requeued(letter, exchange: exchange))
            return selection == .all ? .keepReading : .stop
        }
        for delivery in passedOver { try delivery.nack(requeue: true) }
        return report
    }
}
