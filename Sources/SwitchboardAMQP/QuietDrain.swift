import Synchronization

/// Reads a consumer until it has been quiet for a while: how a one-shot command knows it has seen what
/// a queue or stream holds now (AMQP 0-9-1 has no "end of queue" for a subscription).
public enum QuietDrain {
    /// What to do after one delivery.
    public enum Next: Sendable {
        case keepReading
        case stop
    }

    /// Hands each delivery to `handle` until `handle` says stop, or nothing arrived for `quietPeriod`
    /// while `handle` was not running. Then the subscription is cancelled: deliveries still unsettled
    /// go back to the queue.
    public static func read(
        _ consumer: AMQPConsumer, quietPeriod: Duration,
        handle: (AMQPDelivery) async throws -> Next
    ) async throws {
        let activity = Mutex(Activity(lastSeen: .now, busy: false))
        let watchdog = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(50))
                let isQuiet = activity.withLock { !$0.busy && $0.lastSeen.duration(to: .now) >= quietPeriod }
                if isQuiet {
                    consumer.cancel()
                    return
                }
            }
        }
        defer {
            watchdog.cancel()
            consumer.cancel()
        }
        for try await delivery in consumer {
            activity.withLock { $0 = Activity(lastSeen: .now, busy: true) }
            let next = try await handle(delivery)
            activity.withLock { $0 = Activity(lastSeen: .now, busy: false) }
            switch next {
            case .keepReading: continue
            case .stop: return
            }
        }
    }

    private struct Activity: Sendable {
        var lastSeen: ContinuousClock.Instant
        var busy: Bool
    }
}
