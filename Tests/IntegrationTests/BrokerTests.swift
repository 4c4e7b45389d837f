import Foundation
import Logging
import Synchronization
import SwitchboardAMQP
import SwitchboardTestSupport
import Testing

/// Behaviour that does not disturb the broker, on one node shared by the whole suite.
@Suite(.sharedBroker)
struct BrokerTests {
    @Test func roundTripKeepsTheBodyAndEveryProperty() async throws {
        let connection = try await TestBroker.shared.connect(name: "round-trip")
        let exchange = uniqueName("round-trip-x")
        let queue = uniqueName("round-trip-q")
        try await connection.declare(Topology(
            exchanges: [.init(exchange, kind: .topic)],
            queues: [.init(queue)],
            bindings: [.init(from: exchange, to: .queue(queue), routingKey: "desk.*")]))
        let consumer = try await connection.consume(queue: queue, prefetch: 10)
        let publisher = try await connection.publisher()
        let sent = AMQPProperties(
            contentType: "application/json", contentEncoding: "identity",
            headers: [
                "desk": "acme", "count": 42, "negative": -7, "urgent": true, "ratio": 0.25,
                "raw": .bytes([0, 1, 254, 255]), "at": .timestamp(1_764_000_000), "nothing": .void,
                "tags": ["a", 1, false],
                "nested": ["level": 2, "inner": ["deep": "yes"]],
            ],
            deliveryMode: .persistent, priority: 3, correlationID: "corr-1", replyTo: "replies",
            expiration: "60000", messageID: "message-1", timestamp: 1_764_000_123, type: "conversation.requested",
            userID: "switchboard", appID: "tests")
        let payload = Array(#"{"v":1,"type":"conversation.requested","text":"h\u00e9llo"}"#.utf8)
        try await publisher.publish(payload, exchange: exchange, routingKey: "desk.acme", properties: sent, mandatory: true)

        let delivery = try #require(try await receive(1, from: consumer).first)
        #expect(delivery.body == payload)
        #expect(delivery.properties == sent)
        #expect(delivery.exchange == exchange)
        #expect(delivery.routingKey == "desk.acme")
        #expect(!delivery.redelivered)
        #expect(delivery.deliveryTag == 1)
        await connection.close()
    }

    @Test func anIdleConnectionKeepsItselfAliveWithHeartbeats() async throws {
        let broker = try TestBroker.shared
        var configuration = try broker.configuration()
        configuration.heartbeatSeconds = 2
        let connection = try await AMQPConnection.connect(configuration, logger: Logger(label: "switchboard.test.heartbeat"))
        let queue = uniqueName("heartbeat")
        try await connection.declare(Topology(queues: [.init(queue)]))
        // The broker drops a connection that stays silent for two intervals; a dropped one would
        // show as reconnecting for at least the first backoff (100 ms), far longer than a sample.
        let idleUntil = ContinuousClock.now + .seconds(9)
        while ContinuousClock.now < idleUntil {
            #expect(connection.state == .connected)
            try await Task.sleep(for: .milliseconds(10))
        }
        let publisher = try await connection.publisher()
        try await publisher.publish([1], exchange: "", routingKey: queue)
        #expect(connection.state == .connected)
        await connection.close()
    }

    @Test func aOneMebibyteMessageGoesThrough() async throws {
        let connection = try await TestBroker.shared.connect(name: "large")
        let queue = uniqueName("large")
        try await connection.declare(Topology(queues: [.init(queue)]))
        let consumer = try await connection.consume(queue: queue, prefetch: 2)
        let publisher = try await connection.publisher()
        let large = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        try await publisher.publish(large, exchange: "", routingKey: queue, properties: persistentProperties(number: 1))
        let delivery = try #require(try await receive(1, from: consumer).first)
        #expect(delivery.body.count == 1 << 20)
        #expect(delivery.body == large)
        await connection.close()
    }

    @Test func hundredThousandConfirmedMessagesArriveExactlyOnce() async throws {
        let total = 100_000
        let broker = try TestBroker.shared
        let publishing = try await broker.connect(name: "bulk-publisher")
        let consuming = try await broker.connect(name: "bulk-consumer")
        let queue = uniqueName("bulk")
        try await publishing.declare(Topology(queues: [.init(queue)]))
        let consumer = try await consuming.consume(queue: queue, prefetch: 256)
        let publisher = try await publishing.publisher(confirmWindow: 256)

        async let received = receive(total, from: consumer, timeout: .seconds(240))
        try await withThrowingTaskGroup(of: Void.self) { group in
            let workers = 256
            for worker in 0..<workers {
                group.addTask {
                    for number in stride(from: worker, to: total, by: workers) {
                        try await publisher.publish(
                            body(number: number), exchange: "", routingKey: queue, properties: persistentProperties(number: number))
                    }
                }
            }
            try await group.waitForAll()
        }
        let numbers = try await received.compactMap(messageNumber)
        #expect(numbers.count == total)
        #expect(Set(numbers) == Set(0..<total))
        await publishing.close()
        await consuming.close()
    }

    @Test func unackedMessagesOfADeadConsumerAreRedeliveredToAnother() async throws {
        let broker = try TestBroker.shared
        let first = try await broker.connect(name: "dying-consumer")
        let queue = uniqueName("redeliver")
        try await first.declare(Topology(queues: [.init(queue)]))
        let publisher = try await first.publisher()
        for number in 0..<5 {
            try await publisher.publish(body(number: number), exchange: "", routingKey: queue, properties: persistentProperties(number: number))
        }
        let dying = try await first.consume(queue: queue, prefetch: 10)
        let unacked = try await receive(5, from: dying, acknowledge: false)
        #expect(unacked.allSatisfy { !$0.redelivered })
        await first.close()

        // Settling after the connection went away is an error the caller sees, not a crash.
        #expect(throws: AMQPError.deliveryChannelGone(deliveryTag: unacked[0].deliveryTag)) {
            try unacked[0].ack()
        }

        let second = try await broker.connect(name: "surviving-consumer")
        let survivor = try await second.consume(queue: queue, prefetch: 10)
        let redelivered = try await receive(5, from: survivor)
        #expect(redelivered.allSatisfy { $0.redelivered })
        #expect(Set(redelivered.compactMap(messageNumber)) == Set(0..<5))
        await second.close()
    }

    /// Acks out of order (2, 3, then 1) go out coalesced in frames the broker takes: a multiple ack naming a tag
    /// already settled would close the channel (406 unknown delivery tag) and requeue what was handled.
    @Test func acksOutOfOrderKeepTheConsumerGoingAndSettleEveryMessage() async throws {
        let connection = try await TestBroker.shared.connect(name: "acks-out-of-order")
        let queue = uniqueName("acks-out-of-order")
        try await connection.declare(Topology(queues: [.init(queue)]))
        let publisher = try await connection.publisher()
        for number in 1...4 {
            try await publisher.publish(
                body(number: number), exchange: "", routingKey: queue, properties: persistentProperties(number: number))
        }
        // Three at a time: the fourth comes only once the first three are settled.
        let consumer = try await connection.consume(queue: queue, prefetch: 3)
        let numbers = try await within(.seconds(60)) {
            var received: [AMQPDelivery] = []
            for try await delivery in consumer {
                received.append(delivery)
                if received.count == 3 {
                    try received[1].ack()
                    try received[2].ack()
                    try received[0].ack()
                }
                if received.count == 4 {
                    try delivery.ack()
                    break
                }
            }
            return received.compactMap(messageNumber)
        }
        #expect(numbers == [1, 2, 3, 4])
        consumer.cancel()
        try await waitUntil("the consumer gone") { try await connection.queueStatus(queue)?.consumerCount == 0 }
        #expect(try await connection.queueStatus(queue)?.messageCount == 0, "a settled message went back to the queue")
        await connection.close()
    }

    @Test func aLateAckOfACancelledConsumerDoesNotSettleTheNextConsumersDelivery() async throws {
        let connection = try await TestBroker.shared.connect(name: "late-ack")
        let first = uniqueName("late-ack-first")
        let second = uniqueName("late-ack-second")
        try await connection.declare(Topology(queues: [.init(first), .init(second)]))
        let publisher = try await connection.publisher()
        try await publisher.publish(body(number: 1), exchange: "", routingKey: first, properties: persistentProperties(number: 1))
        try await publisher.publish(body(number: 2), exchange: "", routingKey: second, properties: persistentProperties(number: 2))

        let cancelled = try await connection.consume(queue: first, prefetch: 1)
        let stale = try #require(try await receive(1, from: cancelled, acknowledge: false).first)
        cancelled.cancel()
        // The next consumer takes the freed channel number, and its first delivery has tag 1 too.
        let current = try await connection.consume(queue: second, prefetch: 1)
        let held = try #require(try await receive(1, from: current, acknowledge: false).first)
        #expect(held.deliveryTag == stale.deliveryTag)
        try stale.ack()
        current.cancel()

        // Had the late ack settled it, message 2 would be gone instead of coming back.
        let again = try await receive(1, from: try await connection.consume(queue: second, prefetch: 1))
        #expect(again.map(\.redelivered) == [true])
        #expect(again.compactMap(messageNumber) == [2])
        await connection.close()
    }

    @Test func deliveriesStillQueuedForACancelledConsumerDoNotReachTheNextConsumerOnItsChannel() async throws {
        let connection = try await TestBroker.shared.connect(name: "reused-channel")
        let first = uniqueName("reused-channel-first")
        let second = uniqueName("reused-channel-second")
        try await connection.declare(Topology(queues: [.init(first), .init(second)]))
        let publisher = try await connection.publisher(confirmWindow: 256)
        func publish(_ numbers: Range<Int>, to queue: String) async throws {
            try await publisher.publish(contentsOf: numbers.map { number in
                OutgoingMessage(body: body(number: number, size: 16), exchange: "", routingKey: queue,
                                properties: persistentProperties(number: number), mandatory: false)
            })
        }
        let backlog = 5_000
        try await publish(0..<backlog, to: first)
        let mine = 1_000_000..<1_000_005
        try await publish(mine, to: second)

        // The broker streams the whole backlog at once; closing the channel mid-stream leaves the
        // deliveries read on the way queued in the client, thousands of frames.
        let cancelled = try await connection.consume(queue: first, prefetch: UInt16(backlog))
        _ = try await receive(1, from: cancelled, acknowledge: false)
        cancelled.cancel()
        // Takes the freed channel number while those deliveries may still wait to be read.
        let current = try await connection.consume(queue: second, prefetch: 100)
        let received = try await receive(mine.count, from: current)
        #expect(received.compactMap(messageNumber) == Array(mine))

        // Everything of the first queue went back to it, none of it settled by the second consumer.
        current.cancel()
        let requeued = try await receive(backlog, from: try await connection.consume(queue: first, prefetch: 1_000))
        #expect(Set(requeued.compactMap(messageNumber)) == Set(0..<backlog))
        await connection.close()
    }

    @Test func cancellingAConsumerTheBrokerEndedLeavesTheNextConsumerOnItsChannelAlone() async throws {
        let broker = try TestBroker.shared
        let connection = try await broker.connect(name: "cancel-ended")
        let deleted = uniqueName("cancel-ended-deleted")
        let kept = uniqueName("cancel-ended-kept")
        try await connection.declare(Topology(queues: [.init(deleted), .init(kept)]))
        let ended = try await connection.consume(queue: deleted, prefetch: 1)
        try await broker.ctl("delete_queue", "-p", "switchboard", deleted)
        // The broker's cancel ends the sequence and frees the channel number.
        await #expect(throws: AMQPError.self) { for try await _ in ended {} }
        let current = try await connection.consume(queue: kept, prefetch: 1)
        ended.cancel()

        let publisher = try await connection.publisher()
        try await publisher.publish(body(number: 7), exchange: "", routingKey: kept, properties: persistentProperties(number: 7))
        #expect(try await receive(1, from: current).compactMap(messageNumber) == [7])
        await connection.close()
    }

    @Test func aSubscriptionThatCostItsConnectionIsNotMadeAgainAfterTheReconnect() async throws {
        let connection = try await TestBroker.shared.connect(name: "failed-subscription")
        let queue = uniqueName("failed-subscription")
        // An unknown exchange type is an error of the whole connection, which the broker closes.
        let unknownType = Topology(exchanges: [.init(uniqueName("failed-subscription-x"), kind: .custom("x-no-such-type"))])
        await #expect(throws: AMQPError.self) {
            try await connection.consume(queue: queue, declaring: unknownType)
        }

        // Subscribed again, it would cost every reconnect its connection.
        try await connection.declare(Topology(queues: [.init(queue)]))
        try await waitUntil("the connection is back") { connection.state == .connected }
        let consumer = try await connection.consume(queue: queue, prefetch: 1)
        let publisher = try await connection.publisher()
        try await publisher.publish(body(number: 3), exchange: "", routingKey: queue, properties: persistentProperties(number: 3))
        #expect(try await receive(1, from: consumer).compactMap(messageNumber) == [3])
        #expect(connection.state == .connected)
        await connection.close()
    }

    @Test func manyTasksPublishingConcurrentlyAreAllConfirmedAndDelivered() async throws {
        let tasks = 32
        let perTask = 500
        let broker = try TestBroker.shared
        let publishing = try await broker.connect(name: "concurrent-publishers")
        let consuming = try await broker.connect(name: "concurrent-consumer")
        let queue = uniqueName("concurrent")
        try await publishing.declare(Topology(queues: [.init(queue)]))
        let consumer = try await consuming.consume(queue: queue, prefetch: 256)
        var publishers: [AMQPPublisher] = []
        for _ in 0..<4 { publishers.append(try await publishing.publisher(confirmWindow: 64)) }

        async let received = receive(tasks * perTask, from: consumer, timeout: .seconds(240))
        let confirmed = try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0..<tasks {
                let publisher = publishers[task % publishers.count]
                group.addTask {
                    for index in 0..<perTask {
                        let number = task * perTask + index
                        try await publisher.publish(
                            body(number: number), exchange: "", routingKey: queue, properties: persistentProperties(number: number))
                    }
                    return perTask
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(confirmed == tasks * perTask)
        let numbers = try await received.compactMap(messageNumber)
        #expect(Set(numbers) == Set(0..<(tasks * perTask)))
        #expect(numbers.count == tasks * perTask)
        await publishing.close()
        await consuming.close()
    }

    /// A service's journal retention may change between runs; the broker refuses a stream declared again with
    /// another `x-max-age` as inequivalent, so such a queue is declared only when it is missing.
    @Test func aQueueThatKeepsExistingIsCreatedWithItsArgumentsAndLaterKeptWithThem() async throws {
        let connection = try await TestBroker.shared.connect(name: "keeps-existing")
        let exchange = uniqueName("journal-exchange")
        let journal = uniqueName("journal")
        func topology(maxAge: String, keepsExisting: Bool) -> Topology {
            Topology(
                exchanges: [.init(exchange, kind: .direct)],
                queues: [.init(journal, kind: .stream, maxAge: maxAge, keepsExisting: keepsExisting)],
                // After the queue: the channel the missing queue's lookup cost is open again for it.
                bindings: [.init(from: exchange, to: .queue(journal), routingKey: journal)])
        }
        #expect(try await connection.queueStatus(journal) == nil)
        try await connection.declare(topology(maxAge: "7D", keepsExisting: true))
        #expect(try await connection.queueStatus(journal) != nil)
        let refused = await #expect(throws: AMQPError.self) {
            try await connection.declare(topology(maxAge: "30D", keepsExisting: false))
        }
        guard case .preconditionFailed(_, let detail)? = refused else {
            Issue.record("expected preconditionFailed, got \(String(describing: refused))")
            return
        }
        #expect(detail.contains("x-max-age"), "created with 7D: \(detail)")
        try await connection.declare(topology(maxAge: "30D", keepsExisting: true))
        #expect(try await connection.queueStatus(journal) != nil)
    }

    @Test func consistentHashQuorumAndStreamTopology() async throws {
        let connection = try await TestBroker.shared.connect(name: "topology")
        let inbound = uniqueName("in")
        let shards = uniqueName("shards")
        let deadLetters = uniqueName("dead")
        let events = uniqueName("events")
        let shardQueues = [uniqueName("shard-0"), uniqueName("shard-1")]
        let log = uniqueName("events-log")
        let topology = Topology(
            exchanges: [
                .init(inbound, kind: .topic),
                .consistentHash(shards, hashingHeader: "desk"),
                .init(deadLetters, kind: .fanout),
                .init(events, kind: .topic),
            ],
            queues: shardQueues.map {
                .init($0, kind: .quorum, singleActiveConsumer: true, deliveryLimit: 5, deadLetterExchange: deadLetters,
                      deadLetterStrategy: .atLeastOnce, overflow: .rejectPublish)
            } + [.init(log, kind: .stream, maxLengthBytes: 100_000_000, maxAge: "7D")],
            bindings: [.init(from: inbound, to: .exchange(shards), routingKey: "#")]
                + shardQueues.map { .init(from: shards, to: .queue($0), routingKey: "1") }
                + [.init(from: events, to: .queue(log), routingKey: "#")])
        try await connection.declare(topology)
        try await connection.declare(topology)

        let publisher = try await connection.publisher()
        let desks = (0..<20).map { "desk-\($0)" }
        for (index, desk) in (desks + desks).enumerated() {
            var properties = persistentProperties(number: index)
            properties.headers = ["desk": .string(desk)]
            try await publisher.publish(body(number: index), exchange: inbound, routingKey: "conversation.requested",
                                        properties: properties, mandatory: true)
        }
        for number in 0..<10 {
            try await publisher.publish(body(number: number), exchange: events, routingKey: "offer.made",
                                        properties: persistentProperties(number: number))
        }

        // All 40 were confirmed as routed (mandatory), so once 40 arrived nothing else will.
        let arrivals = Arrivals()
        var consumers: [AMQPConsumer] = []
        for queue in shardQueues { consumers.append(try await connection.consume(queue: queue, prefetch: 50)) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (shard, consumer) in consumers.enumerated() {
                group.addTask {
                    for try await delivery in consumer {
                        try delivery.ack()
                        let desk = delivery.properties.headers["desk"]?.stringValue ?? "(none)"
                        arrivals.record(shard: shard, desk: desk)
                    }
                }
            }
            try await waitUntil("all 40 messages reached a shard") { arrivals.all.count >= 40 }
            consumers.forEach { $0.cancel() }
            try await group.waitForAll()
        }
        let received = arrivals.all
        #expect(received.count == 40)
        var shardOfDesk: [String: Int] = [:]
        for arrival in received {
            #expect(shardOfDesk[arrival.desk, default: arrival.shard] == arrival.shard, "desk \(arrival.desk) reached two shards")
            shardOfDesk[arrival.desk] = arrival.shard
        }
        #expect(Set(shardOfDesk.keys) == Set(desks))
        #expect(Set(received.map(\.shard)) == [0, 1], "20 desks all hashed to one shard")

        let stream = try await connection.consume(queue: log, prefetch: 100, arguments: StreamOffset.first.consumerArguments)
        let logged = try await receive(10, from: stream)
        #expect(logged.compactMap(messageNumber) == Array(0..<10))
        #expect(logged.compactMap { StreamOffset.position(in: $0.properties.headers) } == Array(0..<10))
        await connection.close()
    }

    @Test func singleActiveConsumerHandsOverWhenTheActiveOneGoes() async throws {
        let broker = try TestBroker.shared
        let connection = try await broker.connect(name: "sac")
        let queue = uniqueName("sac")
        try await connection.declare(Topology(queues: [.init(queue, kind: .quorum, singleActiveConsumer: true)]))
        let active = try await connection.consume(queue: queue, prefetch: 10)
        let standby = try await connection.consume(queue: queue, prefetch: 10)
        let publisher = try await connection.publisher()
        for number in 0..<3 {
            try await publisher.publish(body(number: number), exchange: "", routingKey: queue, properties: persistentProperties(number: number))
        }
        #expect(try await receive(3, from: active).compactMap(messageNumber) == [0, 1, 2])
        active.cancel()
        for number in 3..<6 {
            try await publisher.publish(body(number: number), exchange: "", routingKey: queue, properties: persistentProperties(number: number))
        }
        #expect(try await receive(3, from: standby).compactMap(messageNumber) == [3, 4, 5])
        await connection.close()
    }

    /// A one-shot read that knows its queue holds something waits past the quiet period for the first delivery
    /// (a broker slow to deliver it must not make the queue look empty), and fails, naming the queue, when none
    /// comes; a read that knows nothing ends after the quiet period.
    @Test func aQuietDrainWaitsLongerForTheFirstDeliveryOnlyWhenToldSomethingIsThere() async throws {
        let connection = try await TestBroker.shared.connect(name: "quiet-drain")
        let queue = uniqueName("quiet-drain")
        try await connection.declare(Topology(queues: [.init(queue)]))
        let quiet = Duration.milliseconds(200)

        let started = ContinuousClock.now
        try await QuietDrain.read(try await connection.consume(queue: queue), quietPeriod: quiet) { _ in .keepReading }
        let unhinted = started.duration(to: .now)
        #expect(unhinted < .seconds(5), "ended after the quiet period, not \(unhinted)")

        let publisher = try await connection.publisher()
        // Published well after the quiet period has passed: only the longer wait for the first delivery sees it.
        let late = Task {
            try await Task.sleep(for: quiet * 5)
            try await publisher.publish(body(number: 1), exchange: "", routingKey: queue, properties: persistentProperties(number: 1))
        }
        let read = Mutex<[Int]>([])
        try await QuietDrain.read(try await connection.consume(queue: queue), quietPeriod: quiet, firstWithin: .seconds(60)) {
            delivery in
            try delivery.ack()
            read.withLock { $0.append(messageNumber(delivery) ?? -1) }
            return .keepReading
        }
        try await late.value
        #expect(read.withLock { $0 } == [1])

        let empty = await #expect(throws: AMQPError.self) {
            try await QuietDrain.read(try await connection.consume(queue: queue), quietPeriod: quiet, firstWithin: quiet * 2) {
                _ in .keepReading
            }
        }
        #expect(empty == .nothingDelivered(queue: queue, waited: quiet * 2))
        await connection.close()
    }
}

private final class Arrivals: Sendable {
    private let arrivals = Mutex<[(shard: Int, desk: String)]>([])

    func record(shard: Int, desk: String) { arrivals.withLock { $0.append((shard, desk)) } }
    var all: [(shard: Int, desk: String)] { arrivals.withLock { $0 } }
}
