import SwitchboardAMQP
import SwitchboardRuntime

/// A message in `switchboard.dead-letters`, read from the headers the services set (`x-switchboard-reason`,
/// `x-original-exchange`, `x-original-routing-key`, `x-original-user-id`) or, for what the broker dead-lettered itself (delivery
/// limit exceeded), from its `x-first-death-*` headers.
public struct DeadLetter: Sendable {
    /// How many letters one command holds at most while it reads the queue, so listing and requeueing see the
    /// same first letters, and no more.
    public static let readLimit = 1_000

    /// Hands `handle` the letters ready in the queue now, one by one, until it says stop, the last of them is
    /// read, or the queue is quiet for `quietPeriod` (another consumer took the rest). A letter coming in
    /// meanwhile (one requeued and refused again, say) is behind them and not read. The first letter is waited
    /// for up to `QuietDrain.firstDeliveryPatience`, however busy the broker (then `AMQPError.nothingDelivered`).
    ///
    /// What `handle` does not settle stays unsettled: the channel gives those back in their order when the
    /// subscription ends (one given back while it lasts would be delivered to it again at once). They count
    /// toward the prefetch, `readLimit`, so `handle` must stop once it holds that many.
    /// Returns how many letters were ready and how many were read.
    public static func readPresent(
        on connection: AMQPConnection, quietPeriod: Duration, handle: (AMQPDelivery) async throws -> QuietDrain.Next
    ) async throws -> (present: Int, read: Int) {
        let present = try await readyCount(on: connection, waitingUpTo: quietPeriod)
        guard present > 0 else { return (0, 0) }
        let consumer = try await connection.consume(queue: ServiceTopology.deadLetterQueue, prefetch: UInt16(readLimit))
        var read = 0
        try await QuietDrain.read(consumer, quietPeriod: quietPeriod, firstWithin: QuietDrain.firstDeliveryPatience) {
            delivery in
            read += 1
            let next = try await handle(delivery)
            return read >= present ? .stop : next
        }
        return (present, read)
    }

    /// The letters ready in the queue, counted once no consumer holds any (or after `limit`): a subscription
    /// that has just ended, such as the last command's, gives its letters back in the step that removes it.
    private static func readyCount(on connection: AMQPConnection, waitingUpTo limit: Duration) async throws -> Int {
        let deadline = ContinuousClock.now + limit
        while true {
            guard let status = try await connection.queueStatus(ServiceTopology.deadLetterQueue) else { return 0 }
            if status.consumerCount == 0 || ContinuousClock.now >= deadline { return status.messageCount }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    public var messageID: String?
    public var reason: String
    /// Where to publish it again; never the default exchange (only a shard's own pulses come from there).
    public var originalExchange: String?
    /// A shard's timer pulse the broker dead-lettered (past the delivery limit, with the inputs of a shard that
    /// failed again and again): no one's input.
    public var isPulse: Bool
    public var originalRoutingKey: String
    public var desk: String?
    /// The broker user that published the original message, when it carried a `user_id`.
    public var originalUser: String?
    public var body: [UInt8]
    /// The message's properties without the dead-letter bookkeeping, ready to publish again.
    public var republishedProperties: AMQPProperties

    public init(_ delivery: AMQPDelivery) {
        let headers = delivery.properties.headers
        messageID = delivery.properties.messageID
        reason = headers["x-switchboard-reason"]?.stringValue
            ?? headers["x-first-death-reason"]?.stringValue.map { "broker: \($0)" } ?? "unknown"
        originalExchange = (headers["x-original-exchange"]?.stringValue ?? headers["x-first-death-exchange"]?.stringValue)
            .flatMap { $0.isEmpty ? nil : $0 }
        isPulse = headers[ServiceTopology.pulseHeader] != nil
        originalRoutingKey = headers["x-original-routing-key"]?.stringValue ?? delivery.routingKey
        desk = headers["desk"]?.stringValue
        // A service keeps it in a header (it may not publish another user's `user_id`); what the broker
        // dead-letters itself keeps its `user_id`.
        originalUser = headers["x-original-user-id"]?.stringValue ?? delivery.properties.userID
        body = delivery.body
        var properties = delivery.properties
        properties.headers = headers.filter { key, _ in !Self.isBookkeeping(key) }
        properties.userID = originalUser
        republishedProperties = properties
    }

    public func summary(excerptLength: Int) -> String {
        if isPulse {
            return """
                (a shard's timer pulse)  from \(originalRoutingKey)
                  reason: \(reason)
                """
        }
        let text = String(decoding: body, as: UTF8.self)
        let excerpt = text.count > excerptLength ? String(text.prefix(excerptLength)) + "…" : text
        return """
            \(messageID ?? "(no message id)")  desk \(desk ?? "-")  from \(originalExchange ?? "?") key \(originalRoutingKey)\(originalUser.map { "  user \($0)" } ?? "")
              reason: \(reason)
              body: \(excerpt.replacingNewlines())
            """
    }

    private static func isBookkeeping(_ header: String) -> Bool {
        header.hasPrefix("x-switchboard-") || header.hasPrefix("x-original-") || header == "x-death"
            || header.hasPrefix("x-first-death-") || header.hasPrefix("x-last-death-") || header == "x-delivery-count"
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        String(map { $0 == "\n" || $0 == "\r" ? " " : $0 })
    }
}
