import Synchronization
import SwitchboardAMQP
import SwitchboardCommon

/// Deliveries and timer firings waiting for a shard's writer. The writer wakes on a signal and takes
/// everything there is (up to a batch), so deliveries that arrive while a batch runs form the next batch.
final class ShardInbox: Sendable {
    private struct Waiting {
        var deliveries: [AMQPDelivery] = []
        var timerFiredAt: ContinuousClock.Instant?
    }

    private let waiting = Mutex(Waiting())
    let signals: AsyncStream<Void>
    private let signal: AsyncStream<Void>.Continuation

    init() {
        // One pending signal is enough: the writer takes everything waiting when it wakes.
        (signals, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Prefetch bounds how many deliveries can wait here.
    func add(_ delivery: AMQPDelivery) {
        waiting.withLock { waiting in
            waiting.deliveries.append(delivery)
        }
        signal.yield()
    }

    func timerFired() {
        let now = ContinuousClock.now
        waiting.withLock { waiting in
            if waiting.timerFiredAt == nil { waiting.timerFiredAt = now }
        }
        signal.yield()
    }

    /// Up to `limit` deliveries in arrival order, when the oldest of them was received, and when the timer
    /// fired if it fired since the last take.
    func take(max limit: Int) -> (
        deliveries: [AMQPDelivery], oldestArrival: ContinuousClock.Instant?, timerFiredAt: ContinuousClock.Instant?
    ) {
        let (taken, oldest, fired, more) = waiting.withLock { waiting in
            let taken = Array(waiting.deliveries.prefix(limit))
            waiting.deliveries.removeFirst(taken.count)
            defer { waiting.timerFiredAt = nil }
            return (taken, taken.first?.receivedAt, waiting.timerFiredAt, !waiting.deliveries.isEmpty)
        }
        if more { signal.yield() }
        return (taken, oldest, fired)
    }

    /// Wakes the writer, for it to look again at what it holds.
    func wake() { signal.yield() }

    func finish() { signal.finish() }
}

/// The shard's single timer: the core's latest wake-up.
final class ShardTimer: Sendable {
    private struct Armed {
        let deadline: Instant
        let task: Task<Void, Never>
    }

    private let inbox: ShardInbox
    private let armed = Mutex<Armed?>(nil)

    init(inbox: ShardInbox) {
        self.inbox = inbox
    }

    /// Replaces the pending firing with one at `deadline` (none when `nil`); `now` is the wall clock. A
    /// deadline already armed and not yet fired is left as it is: the writer asks after every batch, and the
    /// core's next wake-up seldom changes between two.
    func schedule(_ deadline: Instant?, now: Instant) {
        armed.withLock { armed in
            guard armed?.deadline != deadline else { return }
            armed?.task.cancel()
            armed = deadline.map { deadline in
                Armed(
                    deadline: deadline,
                    task: Task { [weak self] in
                        guard (try? await Task.sleep(for: .milliseconds(max(0, deadline - now)))) != nil else { return }
                        self?.fire(deadline)
                    })
            }
        }
    }

    /// The firing armed now, if any (for tests).
    var armedFiring: (deadline: Instant, task: Task<Void, Never>)? {
        armed.withLock { armed in armed.map { ($0.deadline, $0.task) } }
    }

    private func fire(_ deadline: Instant) {
        // Disarmed first, so the same deadline asked for again from now on arms a new firing.
        armed.withLock { armed in
            if armed?.deadline == deadline { armed = nil }
        }
        inbox.timerFired()
    }
}
