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

    /// The letters ready in the queue, counted once no consumer holds any (or after `limit`): a subscription
    /// that has just ended, the last command's say, gives its letters back in the step that removes it.
    public static func lettersPresent(on connection: AMQPConnection, waitingUpTo limit: Duration) async throws -> Int {
        let deadline = ContinuousClock.now + limit
        while true {
            guard let status = try await connection.queueStatus(ServiceTopology.deadLetterQueue) else { return 0 }
            if status.consumerCount == 0 || ContinuousClock.now >= deadline { return status.messageCount }
            try await Task.sleep(for: .milliseconds(20))
        }
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
        let present = try await lettersPresent(on: connection, waitingUpTo: quietPeriod)
        guard present > 0 else { return report }
        let publisher = try await connection.publisher(confirmWindow: 1)
        let consumer = try await connection.consume(queue: queue, prefetch: UInt16(DeadLetter.readLimit))
        var read = 0
        var passedOver: [AMQPDelivery] = []
        try await QuietDrain.read(consumer, quietPeriod: quietPeriod) { delivery in
            read += 1
            let letter = DeadLetter(delivery)
            var next = QuietDrain.Next.keepReading
            if case .id(let id) = selection, letter.messageID != id {
                passedOver.append(delivery)
            } else if let exchange = letter.originalExchange {
                try await publisher.publish(
                    delivery.body, exchange: exchange, routingKey: letter.originalRoutingKey,
                    properties: letter.republishedProperties, mandatory: true)
                try delivery.ack()
                report.outcomes.append(.requeued(letter, exchange: exchange))
                if selection != .all { next = .stop }
            } else {
                report.outcomes.append(.noOriginalExchange(letter))
                passedOver.append(delivery)
            }
            // The broker delivers no more than the prefetch unsettled, so a full hand ends the reading.
            let handFull = passedOver.count >= DeadLetter.readLimit
            report.stoppedAtReadLimit = handFull && read < present
            return next == .stop || handFull || read >= present ? .stop : .keepReading
        }
        // The subscription has ended, and its channel gave back the letters passed over, in their order. (Given
        // back while it lasted, they would be delivered to it again at once.)
        return report
    }
}
