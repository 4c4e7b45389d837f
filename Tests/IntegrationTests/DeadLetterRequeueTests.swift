import Foundation
import SwitchboardAMQP
import SwitchboardOps
import SwitchboardTestSupport
import SwitchboardCommon
@testable import SwitchboardRuntime
import Testing

/// In `RuntimeTests`, whose tests run one at a time: each runs the Router's shards and reads the dead letters.
extension RuntimeTests {
    /// An agent command dead-lettered because its desk did not exist yet, requeued by `switchboard-ops` once
    /// the desk is configured: it goes out with the `user_id` of its first sender, so the Router takes it.
    @Test func aRequeuedAgentCommandKeepsItsSenderAndIsTakenOnceItsDeskExists() async throws {
        let broker = try TestBroker.shared
        let (connection, events, publisher, desk) = try await deskClient(broker, name: "requeue")
        let router = try RunningService<RouterAdapter>.start(broker, name: "router-requeue")
        try await router.waitUntilReady()
        let ops = try await broker.connect(name: "requeue-ops", user: "switchboard-ops", password: "change-me")
        let ann = try AgentID("ann")

        let early = desk.wire(.agentStatus(agent: ann, status: .online))
        let id = try #require(early.properties.messageID)
        try await publisher.publish(early)
        var requeued: DeadLetter?
        try await waitUntil("the command is dead-lettered and then requeued") {
            if requeued == nil {
                // The desk is configured only once the command has been refused for want of it.
                for outcome in try await DeadLetterRequeue.run(on: ops, .id(id), quietPeriod: .milliseconds(200)).outcomes {
                    guard case .requeued(let letter, _) = outcome else { continue }
                    requeued = letter
                }
            }
            return requeued != nil
        }
        let letter = try #require(requeued)
        #expect(letter.reason.hasPrefix("unknown desk"), "\(letter.reason)")
        #expect(letter.originalUser == "switchboard")
        // Requeued before the desk existed, so it was dead-lettered again; now the desk is made.
        try await publisher.publish(desk.wire(.deskConfigure(DeskSettingsPatch(ringMs: 60_000))))
        try await publisher.publish(desk.wire(.agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 1))))
        try await waitUntil("ann is known to the desk") {
            events.routerEvents(desk: desk.desk).contains { if case .agentChanged = $0.event.body { true } else { false } }
        }
        var outcomes: [DeadLetterRequeue.Outcome] = []
        try await waitUntil("the command is requeued again") {
            outcomes = try await DeadLetterRequeue.run(on: ops, .id(id), quietPeriod: .milliseconds(200)).outcomes
            return !outcomes.isEmpty
        }
        try await events.waitForEvent(desk: desk.desk, "ann is online") { event in
            if case .agentChanged(agent: ann, status: .online, _, _, _, _) = event.body { return true }
            return false
        }
        let rejections = events.routerEvents(desk: desk.desk).filter {
            if case .commandRejected = $0.event.body { true } else { false }
        }
        #expect(rejections.isEmpty, "the requeued command was refused: \(rejections)")

        try await router.stop()
        await ops.close()
        await connection.close()
    }
}

/// How far the ops commands read `switchboard.dead-letters`, on a node of its own: its letters are this test's.
@Suite struct DeadLetterReadLimitTests {
    @Test func requeueReadsTheLettersPresentAtItsStartHoweverManyAreAlikeUpToItsLimit() async throws {
        try await TestBroker.withDedicatedNode(label: "read-limit") { broker in
            let connection = try await broker.connect(name: "read-limit-admin")
            try await connection.declare(ServiceTopology.topology(for: .router, shards: 1))
            let requeued = uniqueName("read-limit-requeued")
            try await connection.declare(Topology(
                queues: [.init(requeued)],
                bindings: [.init(from: ContractExchange.inbound.rawValue, to: .queue(requeued), routingKey: "read-limit.#")]))
            let arrivals = try await connection.consume(queue: requeued, prefetch: 100)
            let publisher = try await connection.publisher()
            func deadLetters(_ names: [String]) async throws {
                try await publisher.publish(contentsOf: names.map { name in
                    OutgoingMessage(
                        body: Array("{}".utf8), exchange: ServiceTopology.deadLetterExchange, routingKey: "read-limit.\(name)",
                        properties: AMQPProperties(
                            headers: [
                                "x-switchboard-reason": "for the test",
                                "x-original-exchange": .string(ContractExchange.inbound.rawValue),
                                "x-original-routing-key": .string("read-limit.\(name)"),
                            ],
                            deliveryMode: .persistent, messageID: name))
                })
            }
            let ops = try await broker.connect(name: "read-limit-ops", user: "switchboard-ops", password: "change-me")
            func requeue(_ selection: DeadLetterRequeue.Selection) async throws -> DeadLetterRequeue.Report {
                try await DeadLetterRequeue.run(on: ops, selection, quietPeriod: .seconds(2))
            }

            // Dead-lettering is at least once: a letter may be there twice, alike.
            try await deadLetters(["twice", "twice"] + (0..<300).map { "letter-\($0)" })
            // Far more letters before it than the commands once held (100).
            let found = try await requeue(.id("letter-299"))
            #expect(found.outcomes.count == 1)
            #expect(!found.stoppedAtReadLimit)
            #expect(try await receive(1, from: arrivals).map(\.properties.messageID) == ["letter-299"])

            // More than a command holds: it stops there and says so, and leaves every letter in the queue.
            try await deadLetters((300..<(300 + DeadLetter.readLimit)).map { "letter-\($0)" })
            let limited = try await requeue(.id("letter-absent"))
            #expect(limited.outcomes.isEmpty)
            #expect(limited.stoppedAtReadLimit)
            // The thousandth letter: two alike and 299 before the second batch, and 698 of it before this one.
            #expect(try await requeue(.id("letter-998")).outcomes.count == 1)
            #expect(try await receive(1, from: arrivals).map(\.properties.messageID) == ["letter-998"])

            // Every letter, the two alike among them; none is read twice.
            let everything = try await requeue(.all)
            let remaining = 2 + 299 + DeadLetter.readLimit - 1
            #expect(everything.outcomes.count == remaining)
            #expect(try await receive(remaining, from: arrivals).count == remaining)
            #expect(try await ops.queueStatus(ServiceTopology.deadLetterQueue)?.messageCount == 0)

            // A shard's pulse the broker dead-lettered is removed (published again through the default exchange, it
            // would be refused, and every later requeue would stop at it); a Router event stays; the rest go on.
            try await publisher.publish(contentsOf: [
                OutgoingMessage(
                    body: [], exchange: ServiceTopology.deadLetterExchange, routingKey: "switchboard.router.shard.0",
                    properties: AMQPProperties(
                        headers: [
                            ServiceTopology.pulseHeader: true, "x-first-death-exchange": "",
                            "x-first-death-reason": "delivery_limit", "x-first-death-queue": "switchboard.router.shard.0",
                        ],
                        type: "tick")),
                OutgoingMessage(
                    body: Array("{}".utf8), exchange: ServiceTopology.deadLetterExchange, routingKey: "offer.made",
                    properties: AMQPProperties(
                        headers: [
                            "x-switchboard-reason": "for the test", "x-switchboard-service": "notifier",
                            "x-original-exchange": .string(ContractExchange.events.rawValue),
                            "x-original-routing-key": "offer.made",
                        ],
                        deliveryMode: .persistent, messageID: "an-event")),
            ])
            try await deadLetters(["after-the-pulse"])
            let mixed = try await requeue(.all)
            let kinds = mixed.outcomes.map { outcome in
                switch outcome {
                case .requeued(let letter, _): "requeued \(letter.messageID ?? "-")"
                case .discardedPulse: "pulse"
                case .routerEvent(let letter): "event \(letter.messageID ?? "-")"
                case .noOriginalExchange(let letter): "no exchange \(letter.messageID ?? "-")"
                }
            }
            #expect(kinds == ["pulse", "event an-event", "requeued after-the-pulse"])
            #expect(try await receive(1, from: arrivals).map(\.properties.messageID) == ["after-the-pulse"])
            // What the command held comes back as its subscription ends: only the Router event.
            try await waitUntil("the requeue's subscription is gone") {
                try await ops.queueStatus(ServiceTopology.deadLetterQueue)?.consumerCount == 0
            }
            #expect(try await ops.queueStatus(ServiceTopology.deadLetterQueue)?.messageCount == 1)

            await ops.close()
            await connection.close()
        }
    }
}
