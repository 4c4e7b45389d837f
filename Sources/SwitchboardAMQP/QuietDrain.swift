import Synchronization

/// Reads a consumer until it has been quiet for a while: how a one-shot command knows it has seen what
/// a queue or stream holds now (AMQP 0-9-1 has no "end of queue" for a subscription).
public enum QuietDrain {
    /// What to do after one delivery.
    public enum Next: Sendable {
        case keepReading
        case stop
    }

    /// How long a read that knows something is there waits for its first delivery, by default: a broker
    /// busy enough to take longer than a quiet period to deliver the first record of a stream must not make
    /// the read end as if the stream were empty.
    public static let firstDeliveryPatience: Duration = .seconds(15)

    /// Hands each delivery to `handle` until `handle` says stop, or nothing arrived for `quietPeriod`
    /// while `handle` was not running. Then the subscription is cancelled: deliveries still unsettled
    /// go back to the queue.
    ///
    /// `firstWithin`, for a read that knows the queue or stream holds something: how long to wait for the
    /// first delivery instead of `quietPeriod`; none by then throws `AMQPError.nothingDelivered`.
    public static func read(
        _ consumer: AMQPConsumer, quietPeriod: Duration, firstWithin: Duration? = nil,
        handle: (AMQPDelivery) async throws -> Next
    ) async throws {
        let firstPeriod = max(quietPeriod, firstWithin ?? quietPeriod)
        let activity = Mutex(Activity(lastSeen: .now, busy: false, period: firstPeriod))
        let watchdog = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(50))
                let isQuiet = activity.withLock { activity in
                    activity.ended = !activity.busy && activity.lastSeen.duration(to: .now) >= activity.period
                    return activity.ended
                }
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
        var handedAny = false
        for try await delivery in consumer {
            // A delivery read in the same turn as the cancel still arrives: once the read ended it is not handed
            // on (its settlement would be dropped with the subscription, and it goes back to the queue anyway).
            let ended = activity.withLock { activity in
                if !activity.ended { activity = Activity(lastSeen: .now, busy: true, period: quietPeriod) }
                return activity.ended
            }
            if ended { break }
            handedAny = true
            let next = try await handle(delivery)
            activity.withLock { $0 = Activity(lastSeen: .now, busy: false, period: quietPeriod) }
            switch next {
            case .keepReading: continue
            case .stop: return
            }
        }
        if !handedAny, firstWithin != nil {
            throw AMQPError.nothingDelivered(queue: consumer.queue, waited: firstPeriod)
        }
    }

    private struct Activity: Sendable {
        var lastSeen: ContinuousClock.Instant
        var busy: Bool
        /// How long without a delivery ends the read: longer until the first one.
        var period: Duration
        /// The watchdog found the read quiet and cancelled the subscription.
        var ended = false
    }
}
