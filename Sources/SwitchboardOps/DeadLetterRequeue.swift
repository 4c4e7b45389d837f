import SwitchboardAMQP
import SwitchboardCommon
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
        /// Left in the queue: a Router event. Published again it would go to every consumer of `switchboard.events`
        /// a second time (the events log and audit among them), and the Notifier and the Closer, which go by each
        /// desk's `seq`, would drop it as old once the desk moved on.
        case routerEvent(DeadLetter)
        /// Removed: a shard's timer pulse, which the next pulse stands in for.
        case discardedPulse(DeadLetter)
    }

    public struct Report: Sendable {
        public var outcomes: [Outcome] = []
        /// Reading stopped with `DeadLetter.readLimit` letters passed over, all held: the letters after them
        /// were not read.
        public var stoppedAtReadLimit = false
    }

    /// Requeues what `selection` picks among the letters in the queue when it starts (`DeadLetter.readPresent`);
    /// the letters passed over go back to the queue. Counted, not recognised: dead-lettering is at least once,
    /// so two letters may be alike.
    /// `each` is told every outcome as it happens, so that what was done before a failure can be reported.
    public static func run(
        on connection: AMQPConnection, _ selection: Selection, quietPeriod: Duration,
        each: (Outcome) -> Void = { _ in }
    ) async throws -> Report {
        var report = Report()
        func note(_ outcome: Outcome) {
            report.outcomes.append(outcome)
            each(outcome)
        }
        let publisher = try await connection.publisher(confirmWindow: 1)
        var passedOver = 0
        let (present, read) = try await DeadLetter.readPresent(on: connection, quietPeriod: quietPeriod) { delivery in
            let letter = DeadLetter(delivery)
            if case .id(let id) = selection, letter.messageID != id {
                passedOver += 1
            } else if letter.isPulse {
                try delivery.ack()
                note(.discardedPulse(letter))
            } else if letter.originalExchange == ContractExchange.events.rawValue {
                note(.routerEvent(letter))
                passedOver += 1
            } else if let exchange = letter.originalExchange {
                try await publisher.publish(
                    delivery.body, exchange: exchange, routingKey: letter.originalRoutingKey,
                    properties: letter.republishedProperties, mandatory: true)
                try delivery.ack()
                note(.requeued(letter, exchange: exchange))
                if selection != .all { return .stop }
            } else {
                note(.noOriginalExchange(letter))
                passedOver += 1
            }
            return passedOver >= DeadLetter.readLimit ? .stop : .keepReading
        }
        report.stoppedAtReadLimit = passedOver >= DeadLetter.readLimit && read < present
        return report
    }
}
