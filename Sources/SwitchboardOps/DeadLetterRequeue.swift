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

    /// Reads the letters that are in the queue when it starts, and requeues what `selection` picks; the letters
    /// passed over go back to the queue. It stops early once the queue is quiet for `quietPeriod` (another
    /// consumer took the rest) or `DeadLetter.readLimit` letters are passed over. A requeued letter that is
    /// refused again comes back behind those, and is not read again. (Counted, not recognised: dead-lettering
    /// is at least once, so two letters may be alike.)
    public static func run(
        on connection: AMQPConnection, _ selection: Selection, quietPeriod: Duration
    ) async throws -> Report {
        var report = Report()
        let queue = ServiceTopology.deadLetterQueue
        let present = try await DeadLetter.present(on: connection, waitingUpTo: quietPeriod)
        guard present > 0 else { return report }
        let publisher = try await connection.publisher(confirmWindow: 1)
        let consumer = try await connection.consume(queue: queue, prefetch: UInt16(DeadLetter.readLimit))
        var read = 0
        // Left unsettled: the channel gives them back when the subscription ends.
        var passedOver = 0
        try await QuietDrain.read(consumer, quietPeriod: quietPeriod) { delivery in
            read += 1
            let letter = DeadLetter(delivery)
            var next = QuietDrain.Next.keepReading
            if case .id(let id) = selection, letter.messageID != id {
                passedOver += 1
            } else if let exchange = letter.originalExchange {
                try await publisher.publish(
                    delivery.body, exchange: exchange, routingKey: letter.originalRoutingKey,
                    properties: letter.republishedProperties, mandatory: true)
                try delivery.ack()
                report.outcomes.append(.requeued(letter, exchange: exchange))
                if selection != .all { next = .stop }
            } else {
                report.outcomes.append(.noOriginalExchange(letter))
                passedOver += 1
            }
            // The broker delivers no more than the prefetch unsettled, so a full hand ends the reading.
            let handFull = passedOver >= DeadLetter.readLimit
            report.stoppedAtReadLimit = handFull && read < present
            return next == .stop || handFull || read >= present ? .stop : .keepReading
        }
        return report
    }
}
