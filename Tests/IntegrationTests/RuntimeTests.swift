import Foundation
import Prometheus
import SwitchboardAMQP
import SwitchboardTestSupport
import SwitchboardCommon
@testable import SwitchboardRuntime
import Synchronization
import Testing

private let ann = try! AgentID("ann")
private let bob = try! AgentID("bob")
private let chat1 = try! ConversationID("chat-1")
private let user1 = try! UserID("user-1")

/// The shard runtime against a real node. Serialized: every test runs the Router's shards, and two tests'
/// runtimes at once would be each other's standby. Desks are unique per test; journals carry over, as they
/// would between deployments.
@Suite(.sharedBroker, .serialized, .stopsServices)
struct RuntimeTests {
    @Test func topologyIsDeclaredTwiceAndThePublicExchangesMatchTheProtocol() async throws {
        let broker = try TestBroker.shared
        let connection = try await broker.connect(name: "topology")
        for service in ServiceName.allCases {
            try await connection.declare(ServiceTopology.topology(for: service, shards: 2))
            try await connection.declare(ServiceTopology.topology(for: service, shards: 2))
        }
        let listed = try await broker.ctl("list_exchanges", "-p", "switchboard", "name", "type", "durable", "arguments")
        for exchange in ContractExchange.allCases {
            let line = listed.split(separator: "\n").first { $0.hasPrefix("\(exchange.rawValue)\t") }
            #expect(line?.contains("\ttopic\ttrue\t") == true, "\(exchange.rawValue): \(line ?? "missing")")
            #expect(line?.contains("switchboard.unroutable") == true, "\(exchange.rawValue) has no alternate exchange")
        }
        // A message no queue takes is kept, not lost.
        let unroutable = try await Collector(consumer: connection.consume(queue: ServiceTopology.unroutableQueue, prefetch: 100))
        let publisher = try await connection.publisher()
        let id = "unroutable-\(UUID().uuidString)"
        try await publisher.publish(
            Array("{}".utf8), exchange: ContractExchange.outbound.rawValue, routingKey: "nobody.listens",
            properties: AMQPProperties(messageID: id))
        try await waitUntil("the unroutable message is kept") {
            unroutable.deliveries.contains { $0.properties.messageID == id }
        }
        await connection.close()
    }

    @Test func routerOffersAConversationWithJournalPositionIdsAndPerDeskSeq() async throws {
        let broker = try TestBroker.shared
        let router = try RunningService<RouterAdapter>.start(broker, name: "router-e2e")
        try await router.waitUntilReady()
        let (connection, events, publisher, desk) = try await deskClient(broker, name: "e2e")
        for body: InboundBody in [
            .deskConfigure(DeskSettingsPatch()),
            .agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 1)),
            .agentStatus(agent: ann, status: .online),
            .conversationRequested(ConversationRequest(conversation: chat1, user: user1)),
        ] {
            try await publisher.publish(desk.wire(body))
        }
        let offer = try await events.waitForEvent(desk: desk.desk, "offer.made") { $0.body.offerMade != nil }
        #expect(offer.event.body.offerMade?.agent == ann)
        let seen = events.routerEvents(desk: desk.desk)
        #expect(seen.map(\.event.seq) == Array(1...UInt64(seen.count)))
        #expect(seen.allSatisfy { isJournalPositionID($0.id) }, "\(seen.map(\.id))")
        #expect(router.runtime.readiness.isReady)
        try await router.stop()
        await connection.close()
    }

    @Test func aRingExpiresWithoutAnyTrafficThroughAJournaledTick() async throws {
        let broker = try TestBroker.shared
        let router = try RunningService<RouterAdapter>.start(broker, name: "router-timer")
        try await router.waitUntilReady()
        let (connection, events, publisher, desk) = try await deskClient(broker, name: "timer")
        for body: InboundBody in [
            .deskConfigure(DeskSettingsPatch(ringMs: 1_000)),
            .agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 1)),
            .agentStatus(agent: ann, status: .online),
            .conversationRequested(ConversationRequest(conversation: chat1, user: user1)),
        ] {
            try await publisher.publish(desk.wire(body))
        }
        let offer = try await events.waitForEvent(desk: desk.desk, "offer.made") { $0.body.offerMade != nil }
        let expired = try await events.waitForEvent(desk: desk.desk, "offer.expired") { $0.body.isOfferExpired }
        #expect(expired.event.at.millisecondsSinceEpoch >= offer.event.at.millisecondsSinceEpoch + 1_000)
        // The expiry came from a tick entry in the journal, at the time the core was given.
        let tick = try await findJournalEntry(broker, service: .router, shards: 0..<2) { entry in
            if case .tick = entry.content { return entry.now == expired.event.at }
            return false
        }
        #expect(tick != nil)
        try await router.stop()
        await connection.close()
    }

    @Test func aNewInstanceRecoversFromSnapshotAndJournalAndRepublishesWithTheSameIds() async throws {
        let broker = try TestBroker.shared
        let (connection, events, publisher, desk) = try await deskClient(broker, name: "recovery")

        // The desk and its agents end up in a snapshot (graceful stop)...
        let first = try RunningService<RouterAdapter>.start(broker, name: "router-recovery-1")
        try await first.waitUntilReady()
        for body: InboundBody in [
            .deskConfigure(DeskSettingsPatch(ringMs: 4_000)),
            .agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 1)),
            .agentStatus(agent: ann, status: .online),
            .agentUpsert(AgentProfile(agent: bob, groups: [], capacity: 1)),
            .agentStatus(agent: bob, status: .online),
        ] {
            try await publisher.publish(desk.wire(body))
        }
        try await events.waitForEvent(desk: desk.desk, "bob online") { event in
            if case .agentChanged(bob, .online, _, _, _, _) = event.body { return true }
            return false
        }
        try await first.stop()

        // ...the request only in the journal (a crash: no snapshot at stop).
        let second = try RunningService<RouterAdapter>.start(broker, name: "router-recovery-2", snapshotOnStop: false)
        try await second.waitUntilReady()
        try await publisher.publish(desk.wire(.conversationRequested(ConversationRequest(conversation: chat1, user: user1))))
        let firstOffer = try await events.waitForEvent(desk: desk.desk, "the first offer") { $0.body.offerMade != nil }
        try await second.stop()

        let third = try RunningService<RouterAdapter>.start(broker, name: "router-recovery-3")
        try await third.waitUntilReady()
        // The effects after the last snapshot are published again, with the same ids and bodies.
        try await waitUntil("offer.made is published again") {
            events.routerEvents(desk: desk.desk).filter { $0.id == firstOffer.id }.count >= 2
        }
        #expect(Set(events.routerEvents(desk: desk.desk).filter { $0.id == firstOffer.id }.map(\.event)).count == 1)
        // The live ring still expires and is offered to the other agent; that offer can be accepted.
        let firstAgent = try #require(firstOffer.event.body.offerMade?.agent)
        try await events.waitForEvent(desk: desk.desk, "the first ring expires", timeout: .seconds(20)) { $0.body.isOfferExpired }
        let reoffer = try await events.waitForEvent(desk: desk.desk, "the re-offer", timeout: .seconds(20)) { event in
            guard let made = event.body.offerMade else { return false }
            return made.agent != firstAgent
        }
        let made = try #require(reoffer.event.body.offerMade)
        try await publisher.publish(desk.wire(.offerAccept(agent: made.agent, conversation: chat1, offer: made.offer)))
        let assigned = try await events.waitForEvent(desk: desk.desk, "the conversation is assigned") { $0.body.isAssigned }
        guard case .conversationAssigned(_, _, let agent, _, .accepted) = assigned.event.body else {
            Issue.record("unexpected \(assigned.event.body)")
            return
        }
        #expect(agent == made.agent)
        let seqs = Set(events.routerEvents(desk: desk.desk).map(\.event.seq))
        #expect(seqs == Set(1...UInt64(seqs.count)), "per-desk seq has no gap across the restarts")
        try await third.stop()
        await connection.close()
    }

    /// Snapshots are encoded while the shard goes on and appended later, as of an earlier seq; a crashed
    /// instance's successor reads them and the journal, and the desk goes on exactly. (Restoring from such
    /// a snapshot when the journal is old or cut off is in `ShardLedgerTests` and `JournalRetentionTests`.)
    @Test func snapshotsEncodedWhileTheShardGoesOnRestoreTheWholeState() async throws {
        let broker = try TestBroker.shared
        let (connection, events, publisher, desk) = try await deskClient(broker, name: "snapshots")

        let first = try RunningService<RouterAdapter>.start(
            broker, name: "router-snapshots-1", snapshotEveryEntries: 2, snapshotOnStop: false)
        try await first.waitUntilReady()
        var bodies: [InboundBody] = [
            .deskConfigure(DeskSettingsPatch(ringMs: 60_000)),
            .agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 1)),
        ]
        for _ in 0..<15 { bodies += [.agentStatus(agent: ann, status: .online), .agentStatus(agent: ann, status: .break)] }
        for body in bodies {
            // Counted before publishing: the event can come before this test looks again.
            let count = events.routerEvents(desk: desk.desk).count
            try await publisher.publish(desk.wire(body))
            // One at a time: every input its own batch, so snapshots start and land between them.
            try await waitUntil("the input's event") { events.routerEvents(desk: desk.desk).count > count }
        }
        let deskName = desk.desk.rawValue
        let snapshot = try await findJournalEntry(broker, service: .router, shards: 0..<2) { entry in
            guard case .snapshot(let state, _) = entry.content else { return false }
            return String(decoding: state, as: UTF8.self).contains(deskName)
        }
        #expect(snapshot != nil, "a snapshot of the desk was journaled while the shard went on")
        let before = events.routerEvents(desk: desk.desk)
        let lastSeq = try #require(before.map(\.event.seq).max())
        #expect(Set(before.map(\.event.seq)).count == before.count)
        try await first.stop()

        let second = try RunningService<RouterAdapter>.start(broker, name: "router-snapshots-2")
        try await second.waitUntilReady()
        try await publisher.publish(desk.wire(.agentStatus(agent: ann, status: .online)))
        let next = try await events.waitForEvent(desk: desk.desk, "ann online after the restart") { event in
            event.seq > lastSeq
        }
        // The restored desk knows ann and continues its numbering with no gap.
        #expect(next.event.seq == lastSeq + 1)
        guard case .agentChanged(ann, .online, _, _, _, _) = next.event.body else {
            Issue.record("unexpected \(next.event.body)")
            return
        }
        try await second.stop()
        await connection.close()
    }

    /// A shard reports its work on the metrics an operator reads: that it is active, its inputs, journal and
    /// effects, and what its snapshots cost.
    @Test func aShardReportsItsWorkAndWhatItsSnapshotsCostInItsMetrics() async throws {
        let broker = try TestBroker.shared
        let registry = PrometheusCollectorRegistry()
        let router = try RunningService<RouterAdapter>.start(
            broker, name: "router-metrics", snapshotEveryEntries: 2, metricsFactory: PrometheusMetricsFactory(registry: registry))
        try await router.waitUntilEveryShard(.active)
        let (connection, events, publisher, desk) = try await deskClient(broker, name: "metrics")
        let bodies: [InboundBody] = [
            .deskConfigure(DeskSettingsPatch(ringMs: 60_000)),
            .agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 1)),
            .agentStatus(agent: ann, status: .online),
            .agentStatus(agent: ann, status: .break),
            .agentStatus(agent: ann, status: .online),
        ]
        for body in bodies {
            let count = events.routerEvents(desk: desk.desk).count
            try await publisher.publish(desk.wire(body))
            // One at a time: every input its own batch, so a snapshot starts and lands between them.
            try await waitUntil("the input's event") { events.routerEvents(desk: desk.desk).count > count }
        }
        /// The sum of a metric's samples over the Router's shards (those with `label` too, when given), as `GET /metrics`
        /// would show them.
        func total(_ name: String, _ label: String? = nil) -> Double {
            registry.emitToString().split(separator: "\n").reduce(0) { sum, line in
                guard line.hasPrefix(name + "{"), line.contains(#"service="router""#), label.map(line.contains) ?? true,
                    let value = line.split(separator: " ").last.flatMap({ Double($0) })
                else { return sum }
                return sum + value
            }
        }
        try await waitUntil("a snapshot is reported") { total("switchboard_snapshots_total") >= 1 }
        #expect(total("switchboard_shard_active") == 2, "both shards active")
        #expect(total("switchboard_inputs_total") >= Double(bodies.count))
        #expect(total("switchboard_journal_entries_total") >= Double(bodies.count))
        #expect(total("switchboard_journal_appends_total") >= Double(bodies.count))
        #expect(total("switchboard_effects_published_total") >= Double(bodies.count))
        #expect(total("switchboard_snapshot_bytes") > 0)
        #expect(total("switchboard_snapshot_encode_seconds_count") >= 1)
        #expect(total("switchboard_stage_seconds_count") > 0)
        // How long each snapshot waited for room before a deadline, and how long its append held the journal.
        #expect(total("switchboard_stage_seconds_count", #"stage="snapshot_held""#) >= 1)
        #expect(total("switchboard_stage_seconds_count", #"stage="snapshot_append""#) >= 1)
        try await router.stop()
        await connection.close()
    }

    /// A snapshot that is ready while a ring is about to expire waits until the ring's tick is journaled:
    /// appending it would hold the journal, and the tick behind it. Here a snapshot is due after every batch,
    /// and a batch runs every few milliseconds, yet none is appended in the 50 ms before the deadline.
    @Test func aSnapshotWaitsUntilTheTimerAboutToFireHasFired() async throws {
        let broker = try TestBroker.shared
        let (connection, events, publisher, desk) = try await deskClient(broker, name: "snapshot-hold")
        let router = try RunningService<RouterAdapter>.start(broker, name: "router-snapshot-hold", snapshotEveryBatch: true)
        try await router.waitUntilEveryShard(.active)
        for body: InboundBody in [
            .deskConfigure(DeskSettingsPatch(ringMs: 500)),
            .agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 1)),
            .agentUpsert(AgentProfile(agent: bob, groups: [], capacity: 1)),
            .agentStatus(agent: ann, status: .online),
            .conversationRequested(ConversationRequest(conversation: chat1, user: user1)),
        ] {
            try await publisher.publish(desk.wire(body))
        }
        let ring = try await events.waitForEvent(desk: desk.desk, "ann's ring") { $0.body.offerMade != nil }
        guard case .offerMade(_, _, _, _, _, let expiresAt, _) = ring.event.body else {
            Issue.record("not a ring: \(ring.event.body)")
            return
        }
        // bob comes and goes, one confirmed publish after another, until the ring has expired: the shard runs
        // batch after batch, each with a snapshot due.
        var status = AgentStatus.break
        let giveUp = ContinuousClock.now + .seconds(30)
        while !events.routerEvents(desk: desk.desk).contains(where: { $0.event.body.isOfferExpired }) {
            try #require(ContinuousClock.now < giveUp, "ann's ring expired")
            for _ in 0..<10 {
                status = status == .online ? .break : .online
                try await publisher.publish(desk.wire(.agentStatus(agent: bob, status: status)))
            }
        }
        try await router.stop()

        var checked = false
        for shard in 0..<2 {
            let journal = try await journalEntries(broker, service: .router, shard: shard)
            // This router's term on the shard that holds the desk.
            guard let epoch = journal.last(where: { entry in
                if case .input(let input) = entry.content { input.deskHeader == desk.desk.rawValue } else { false }
            })?.epoch else { continue }
            let term = journal.filter { $0.epoch == epoch }
            let tick = try #require(term.firstIndex { $0.content == .tick && $0.now >= expiresAt }, "the expiry's tick")
            let snapshots = term[..<tick].filter { if case .snapshot = $0.content { true } else { false } }
            #expect(snapshots.count > 1, "snapshots were appended while the ring was live")
            // The hold begins 50 ms before the deadline, and a snapshot bears the time it was decided at.
            let msBeforeDeadline = snapshots.map { expiresAt - $0.now }
            #expect(msBeforeDeadline.allSatisfy { $0 > 50 }, "each snapshot's milliseconds before the deadline")
            checked = true
        }
        #expect(checked, "the desk's shard was found")
        await connection.close()
    }

    @Test func aStandbyTakesOverWhenTheActiveInstanceStops() async throws {
        let broker = try TestBroker.shared
        let (connection, events, publisher, desk) = try await deskClient(broker, name: "standby")

        let active = try RunningService<RouterAdapter>.start(broker, name: "router-active")
        try await active.waitUntilEveryShard(.active)
        let standby = try RunningService<RouterAdapter>.start(broker, name: "router-standby")
        try await standby.waitUntilEveryShard(.standby)
        #expect(standby.runtime.readiness.isReady)
        for body: InboundBody in [
            .deskConfigure(DeskSettingsPatch()),
            .agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 1)),
            .agentStatus(agent: ann, status: .online),
        ] {
            try await publisher.publish(desk.wire(body))
        }
        try await events.waitForEvent(desk: desk.desk, "ann online") { event in
            if case .agentChanged(ann, .online, _, _, _, _) = event.body { return true }
            return false
        }

        try await active.stop()
        try await standby.waitUntilEveryShard(.active, timeout: .seconds(10))
        try await publisher.publish(desk.wire(.conversationRequested(ConversationRequest(conversation: chat1, user: user1))))
        let offer = try await events.waitForEvent(desk: desk.desk, "offer.made after the takeover") { $0.body.offerMade != nil }
        #expect(offer.event.body.offerMade?.agent == ann)
        #expect(offer.id.hasPrefix("router."))
        try await standby.stop()
        await connection.close()
    }

    /// An instance started with other memory limits journals the change as its term's first entry, then a
    /// snapshot; a standby applies it where it is journaled, and taking over with the same limits journals
    /// nothing more.
    @Test func otherMemoryLimitsAreJournaledAtTakeoverAndTheStandbyKeepsThem() async throws {
        let broker = try TestBroker.shared
        let (connection, events, publisher, desk) = try await deskClient(broker, name: "limits")
        func agentStates() -> Int {
            events.routerEvents(desk: desk.desk).count { if case .agentState = $0.event.body { true } else { false } }
        }
        let sync = desk.wire(.agentSync(agent: ann))
        let later = desk.wire(.agentSync(agent: ann))

        let first = try RunningService<RouterAdapter>.start(broker, name: "router-limits-1")
        try await first.waitUntilEveryShard(.active)
        for body: InboundBody in [
            .deskConfigure(DeskSettingsPatch()), .agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 1)),
            .agentStatus(agent: ann, status: .online),
        ] {
            try await publisher.publish(desk.wire(body))
        }
        // With the default limits, `sync` delivered again is a duplicate: two states, for `sync` and `later`.
        for message in [sync, sync, later] { try await publisher.publish(message) }
        try await waitUntil("ann's state for sync and later") { agentStates() == 2 }
        try await first.stop()

        let small = ["rememberedMessages": 1]
        // The journals are the suite's: only this test's changes count, those from here on.
        let changing = ShardWorker<RouterAdapter>.wallClock()
        let second = try RunningService<RouterAdapter>.start(broker, name: "router-limits-2", snapshotOnStop: false, limits: small)
        try await second.waitUntilEveryShard(.active)
        let standby = try RunningService<RouterAdapter>.start(broker, name: "router-limits-3", limits: small)
        try await standby.waitUntilEveryShard(.standby)
        // One message id remembered (`later`'s): `sync` is taken again.
        try await publisher.publish(sync)
        try await waitUntil("ann's state for sync once more") { agentStates() == 3 }

        try await second.stop()
        try await standby.waitUntilEveryShard(.active, timeout: .seconds(10))
        // The standby holds the change too: only `sync` is remembered, and `later` is taken again.
        try await publisher.publish(later)
        try await waitUntil("ann's state for later once more") { agentStates() == 4 }

        let expected = RouterAdapter.defaultLimits.changing(small).named
        for shard in 0..<2 {
            let entries = try await journalEntries(broker, service: .router, shard: shard)
            let changes = entries.indices.filter { index in
                guard entries[index].now >= changing, case .limits = entries[index].content else { return false }
                return true
            }
            #expect(changes.count == 1, "shard \(shard): one change, by the second instance; none by the standby")
            guard let index = changes.first, case .limits(let limits) = entries[index].content, let seq = entries[index].seq
            else { continue }
            #expect(limits == expected)
            let next = entries[(index + 1)...].first { $0.seq != nil && $0.epoch == entries[index].epoch }
            guard case .snapshot(_, let asOf)? = next?.content else {
                Issue.record("shard \(shard): a snapshot follows the change, not \(String(describing: next))")
                continue
            }
            #expect(asOf == seq)
        }
        try await standby.stop()
        await connection.close()
    }

    /// An instance configured with other limits than the shard's writer says so on its metrics while it stands
    /// by (`switchboard_limits_differ`, what the alert on it reads), and no longer once it has taken over and
    /// journaled its own.
    @Test func aStandbyConfiguredWithOtherLimitsThanTheWriterReportsItUntilItTakesOver() async throws {
        let broker = try TestBroker.shared
        let writer = try RunningService<RouterAdapter>.start(
            broker, name: "router-limits-writer", limits: ["rememberedOffersPerDesk": 5])
        try await writer.waitUntilEveryShard(.active)
        let registry = PrometheusCollectorRegistry()
        let standby = try RunningService<RouterAdapter>.start(
            broker, name: "router-limits-standby", metricsFactory: PrometheusMetricsFactory(registry: registry))
        try await standby.waitUntilEveryShard(.standby)
        /// The shards for which the standby reports other limits, as `GET /metrics` would show them.
        func differing() -> [Substring] {
            registry.emitToString().split(separator: "\n").filter { line in
                line.hasPrefix("switchboard_limits_differ{") && line.split(separator: " ").last.flatMap { Double($0) } == 1
            }
        }
        try await waitUntil("both shards reported as holding other limits") { differing().count == 2 }

        try await writer.stop()
        try await standby.waitUntilEveryShard(.active, timeout: .seconds(10))
        try await waitUntil("no shard reported once the standby journaled its limits") { differing().isEmpty }
        #expect(registry.emitToString().contains("switchboard_limits_differ{"))
        try await standby.stop()
    }

    /// What `.stopsServices` is for: a test that fails while its runtime runs does not leave that runtime
    /// holding the shards. Were it left running, the successor here would stay a standby.
    @Test func aRuntimeLeftRunningByAFailedTestIsStoppedWithIt() async throws {
        struct Failed: Error {}
        let broker = try TestBroker.shared
        await #expect(throws: Failed.self) {
            try await StopsServicesTrait().provideScope(for: Test.current!, testCase: Test.Case.current) {
                let leftRunning = try RunningService<RouterAdapter>.start(broker, name: "router-left-running")
                try await leftRunning.waitUntilEveryShard(.active)
                throw Failed()
            }
        }
        let successor = try RunningService<RouterAdapter>.start(broker, name: "router-successor")
        try await successor.waitUntilEveryShard(.active, timeout: .seconds(10))
        try await successor.stop()
    }

    @Test func badInputIsDeadLetteredWithAReasonAndAnInvalidAgentCommandIsAnswered() async throws {
        let broker = try TestBroker.shared
        let router = try RunningService<RouterAdapter>.start(broker, name: "router-bad-input")
        try await router.waitUntilReady()
        let connection = try await broker.connect(name: "bad-input-client")
        let events = try await Collector.bind(connection, exchange: ContractExchange.events.rawValue)
        let deadLetters = try await Collector(consumer: connection.consume(queue: ServiceTopology.deadLetterQueue, prefetch: 1_000))
        let publisher = try await connection.publisher()
        let desk = InboundFactory(deskPrefix: "bad")
        try await configureDeskWithAnn(desk, publisher, events)

        func raw(_ body: String, id: String, type: String, routingKey: String? = nil) async throws {
            try await publisher.publish(
                Array(body.utf8), exchange: ContractExchange.inbound.rawValue, routingKey: routingKey ?? type,
                properties: AMQPProperties(
                    contentType: "application/json", headers: ["desk": .string(desk.desk.rawValue)],
                    deliveryMode: .persistent, messageID: id, type: type, userID: "switchboard"))
        }
        let at = "2026-11-25T18:00:00.000Z"
        let prefix = desk.desk.rawValue
        try await raw("{not json", id: "\(prefix)-json", type: "agent.sync")
        try await raw(
            #"{"v":2,"type":"agent.sync","id":"\#(prefix)-version","desk":"\#(prefix)","at":"\#(at)","agent":"ann"}"#,
            id: "\(prefix)-version", type: "agent.sync")
        let padding = String(repeating: "x", count: WireCodec.maxBodyBytes)
        try await raw(
            #"{"v":1,"type":"agent.sync","id":"\#(prefix)-big","desk":"\#(prefix)","at":"\#(at)","agent":"ann","pad":"\#(padding)"}"#,
            id: "\(prefix)-big", type: "agent.sync")
        let unknownDesk = InboundFactory(deskPrefix: "never-configured")
        let stray = unknownDesk.message(.agentSync(agent: ann))
        try await publisher.publish(try WireCodec.outgoing(stray).publishedAs("switchboard"))
        // An agent's command missing its offer: dead-lettered, and answered to the agent.
        try await raw(
            #"{"v":1,"type":"offer.accept","id":"\#(prefix)-accept","desk":"\#(prefix)","at":"\#(at)","agent":"ann","conversation":"chat-1"}"#,
            id: "\(prefix)-accept", type: "offer.accept")
        // A body under a routing key that is not its type (the key a gateway may publish under, the body an
        // admin's): the broker's topic permissions checked the key, so it is not taken for what it says.
        try await raw(
            #"{"v":1,"type":"desk.configure","id":"\#(prefix)-key","desk":"\#(prefix)","at":"\#(at)","settings":{"ringMs":1234}}"#,
            id: "\(prefix)-key", type: "desk.configure", routingKey: "agent.status")

        let expected = ["\(prefix)-json", "\(prefix)-version", "\(prefix)-big", stray.id.rawValue, "\(prefix)-accept"]
        try await waitUntil("every bad input is dead-lettered") {
            let ids = Set(deadLetters.deliveries.compactMap(\.properties.messageID))
            return expected.allSatisfy(ids.contains)
        }
        for delivery in deadLetters.deliveries where expected.contains(delivery.properties.messageID ?? "") {
            let headers = delivery.properties.headers
            #expect(headers["x-switchboard-reason"]?.stringValue?.isEmpty == false)
            #expect(headers["x-switchboard-service"]?.stringValue == "router")
            #expect(headers["x-original-exchange"]?.stringValue == ContractExchange.inbound.rawValue)
            #expect(headers["x-original-routing-key"]?.stringValue == delivery.properties.type)
        }
        let reasons = Dictionary(
            deadLetters.deliveries.map { ($0.properties.messageID ?? "", $0.properties.headers["x-switchboard-reason"]?.stringValue ?? "") },
            uniquingKeysWith: { first, _ in first })
        #expect(reasons["\(prefix)-big"]?.contains("over the limit") == true, "\(reasons["\(prefix)-big"] ?? "")")
        #expect(reasons[stray.id.rawValue]?.contains("unknown desk") == true)
        try await waitUntil("the body under another type's routing key is dead-lettered") {
            deadLetters.deliveries.contains { $0.properties.messageID == "\(prefix)-key" }
        }
        let keyReason = deadLetters.deliveries.first { $0.properties.messageID == "\(prefix)-key" }?
            .properties.headers["x-switchboard-reason"]?.stringValue
        #expect(keyReason == #"desk.configure: field routing key: must be the message type "desk.configure", not "agent.status""#)

        // The agent commands that could be read far enough (the accept without its offer, the sync of a
        // higher version) are answered; the unparseable and the oversize one cannot name their agent.
        for command in ["\(prefix)-accept", "\(prefix)-version"] {
            let rejection = try await events.waitForEvent(desk: desk.desk, "command.rejected of \(command)") { event in
                if case .commandRejected(let rejected) = event.body { return rejected.command.rawValue == command }
                return false
            }
            guard case .commandRejected(let rejected) = rejection.event.body else { continue }
            #expect(rejected.reason == .invalid)
            #expect(rejected.agent == ann)
        }
        let rejectedCommands = events.routerEvents(desk: desk.desk).compactMap { event -> String? in
            if case .commandRejected(let rejected) = event.event.body { return rejected.command.rawValue }
            return nil
        }
        #expect(rejectedCommands.sorted() == ["\(prefix)-accept", "\(prefix)-version"])

        // The runtime keeps going.
        try await publisher.publish(desk.wire(.agentSync(agent: ann)))
        try await events.waitForEvent(desk: desk.desk, "agent.state after the bad input") { event in
            if case .agentState = event.body { return true }
            return false
        }
        try await router.stop()
        await connection.close()
    }
}

extension RuntimeTests {
    @Test func afterALostConnectionTheInstanceCatchesUpAgainBeforeItContinues() async throws {
        let broker = try TestBroker.shared
        let router = try RunningService<RouterAdapter>.start(broker, name: "router-reconnect")
        try await router.waitUntilEveryShard(.active)
        let (connection, events, publisher, desk) = try await deskClient(broker, name: "reconnect")
        try await configureDeskWithAnn(desk, publisher, events)

        let cut = ShardWorker<RouterAdapter>.wallClock()
        try await broker.ctl("close_all_connections", "-p", "switchboard", "connection cut by a test")
        // After reconnecting, each shard's first delivery (a pulse at the latest) starts a new term.
        for shard in 0..<2 {
            let marker = try await findJournalEntry(broker, service: .router, shards: shard..<(shard + 1)) { entry in
                if case .marker = entry.content { return entry.now >= cut }
                return false
            }
            #expect(marker != nil, "shard \(shard) wrote no new marker after the reconnect")
        }
        try await router.waitUntilEveryShard(.active)
        try await waitUntil("the client is connected again") { connection.state == .connected }
        try await publisher.publish(desk.wire(.agentSync(agent: ann)))
        try await events.waitForEvent(desk: desk.desk, "agent.state after the reconnect") { event in
            if case .agentState = event.body { return true }
            return false
        }
        // Effects since the last snapshot are published again under their first ids: one seq per id, no gap.
        let seen = events.routerEvents(desk: desk.desk)
        let seqsByID = Dictionary(grouping: seen, by: \.id).mapValues { Set($0.map(\.event.seq)) }
        #expect(seqsByID.values.allSatisfy { $0.count == 1 })
        let seqs = Set(seen.map(\.event.seq))
        #expect(seqs == Set(1...UInt64(seqs.count)))
        #expect(seqsByID.count == seqs.count)
        try await router.stop()
        await connection.close()
    }

    /// The active instance's connection drops while it holds deliveries, and the broker hands the shard queue to
    /// the standby. Back on a new connection, the first instance stands by: it does not take the shards over again
    /// for the deliveries it held (their acks can only fail, and each attempt would supersede the standby's term).
    @Test func anInstanceThatLostItsConnectionLeavesTheShardsToTheStandbyThatTookThem() async throws {
        let broker = try TestBroker.shared
        let first = try RunningService<RouterAdapter>.start(broker, name: "router-blip-first")
        try await first.waitUntilEveryShard(.active)
        let second = try RunningService<RouterAdapter>.start(broker, name: "router-blip-second")
        try await second.waitUntilEveryShard(.standby)
        let (connection, events, publisher, desk) = try await deskClient(broker, name: "blip")
        try await configureDeskWithAnn(desk, publisher, events)
        // Traffic all along, so the first instance has deliveries in hand when its connection goes.
        let traffic = Task {
            while !Task.isCancelled {
                try? await publisher.publish(desk.wire(.agentSync(agent: ann)))
            }
        }
        defer { traffic.cancel() }
        try await events.waitForEvent(desk: desk.desk, "the traffic answered") { event in
            if case .agentState = event.body { return true }
            return false
        }
        let listed = try await broker.ctl("list_connections", "-p", "switchboard", "--silent", "pid", "client_properties")
        let pid = try #require(listed.split(separator: "\n").first { $0.contains("router-blip-first") }?.split(separator: "\t").first)
        _ = try await broker.ctl("close_connection", String(pid), "closed by a test")

        try await second.waitUntilEveryShard(.active)
        try await first.waitUntilEveryShard(.standby)
        // From now on the second instance writes both shards, and the first stands by.
        var seen: Set<String> = []
        let until = ContinuousClock.now + .seconds(8)
        while ContinuousClock.now < until {
            for (name, service, expected) in [("first", first, Readiness.ShardPhase.standby), ("second", second, .active)] {
                for (shard, phase) in service.runtime.readiness.shards where phase != expected {
                    seen.insert("\(name) instance's shard \(shard) \(phase)")
                }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(seen.isEmpty, "\(seen.sorted())")
        traffic.cancel()
        try await first.stop()
        try await second.stop()
        await connection.close()
    }

    /// Effects the broker refuses (a nack) fail their batch: the shard catches up again and publishes them again
    /// under the same ids until the broker takes them, and what came in meanwhile waits. Nothing is decided
    /// twice, and every delivery is acknowledged in the end. With a snapshot due after every batch and ready at
    /// once, none covers the refused effects: a snapshot that did would drop them from the journal's tail, and
    /// they would never be published again.
    @Test(arguments: [false, true])
    func effectsTheBrokerRefusesArePublishedAgainUntilItTakesThem(snapshotEveryBatch: Bool) async throws {
        let broker = try TestBroker.shared
        let router = try RunningService<RouterAdapter>.start(
            broker, name: "router-refused", snapshotEveryBatch: snapshotEveryBatch)
        try await router.waitUntilEveryShard(.active)
        let (connection, events, publisher, desk) = try await deskClient(broker, name: "refused")
        for body: InboundBody in [
            .deskConfigure(DeskSettingsPatch()),
            .agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 2)),
            .agentStatus(agent: ann, status: .online),
        ] {
            try await publisher.publish(desk.wire(body))
        }
        try await events.waitForEvent(desk: desk.desk, "ann is online") { event in
            if case .agentChanged(_, let status, _, _, _, _) = event.body { return status == .online }
            return false
        }
        // A queue that takes no message while a policy limits it to none: the broker nacks every offer.made,
        // though the other queues take it.
        let refusing = uniqueName("refusing")
        try await connection.declare(Topology(
            queues: [.init(refusing, exclusive: true, autoDelete: true)],
            bindings: [.init(from: ContractExchange.events.rawValue, to: .queue(refusing), routingKey: "offer.made")]))
        let taken = try await Collector(consumer: connection.consume(queue: refusing, prefetch: 100))
        try await broker.ctl(
            "set_policy", "-p", "switchboard", "--apply-to", "queues", "--priority", "100", refusing, "^\(refusing)$",
            #"{"max-length": 0, "overflow": "reject-publish"}"#)
        try await waitUntil("the policy applies") {
            try await broker.ctl("list_queues", "-p", "switchboard", "name", "policy").contains("\(refusing)\t\(refusing)")
        }
        try await publisher.publish(desk.wire(.conversationRequested(ConversationRequest(conversation: chat1, user: user1))))
        func offers() -> [String] { events.routerEvents(desk: desk.desk).filter { $0.event.body.offerMade != nil }.map(\.id) }
        try await waitUntil("the refused offer is published again") { offers().count >= 2 }
        try await publisher.publish(desk.wire(.agentSync(agent: ann)))
        #expect(taken.deliveries.isEmpty)

        try await broker.ctl("clear_policy", "-p", "switchboard", refusing)
        try await waitUntil("the refusing queue takes the offer once allowed to") {
            taken.deliveries.contains { delivery in
                (try? WireCodec.decodeRouterEvent(Data(delivery.body)))?.message.desk == desk.desk
            }
        }
        try await events.waitForEvent(desk: desk.desk, "agent.state, after the offer is taken") { event in
            if case .agentState = event.body { return true }
            return false
        }
        // One decision, published again under its one id; no seq skipped or given twice.
        #expect(Set(offers()).count == 1, "\(offers())")
        let seen = events.routerEvents(desk: desk.desk)
        let seqsByID = Dictionary(grouping: seen, by: \.id).mapValues { Set($0.map(\.event.seq)) }
        #expect(seqsByID.values.allSatisfy { $0.count == 1 })
        let seqs = Set(seen.map(\.event.seq))
        #expect(seqs == Set(1...UInt64(seqs.count)) && seqsByID.count == seqs.count)
        if snapshotEveryBatch {
            // Snapshots were taken, and in the end one covered the request: the case was there to get wrong.
            let deskName = desk.desk.rawValue
            let request = try await findJournalEntry(broker, service: .router, shards: 0..<2) { entry in
                guard case .input(let input) = entry.content else { return false }
                return input.deskHeader == deskName && input.type == "conversation.requested"
            }
            let requestSeq = try #require(request?.seq)
            // Only the desk's shard has snapshots of the desk: `asOf` counts in that shard's journal.
            let covering = try await findJournalEntry(broker, service: .router, shards: 0..<2) { entry in
                guard case .snapshot(let state, let asOf) = entry.content else { return false }
                return asOf >= requestSeq && String(decoding: state, as: UTF8.self).contains(deskName)
            }
            #expect(covering != nil, "a snapshot as of the request or later")
        }
        // Every delivery is acknowledged once its effects are confirmed (a pulse may be in flight at a look).
        let shardQueues = (0..<2).map { ServiceTopology.shardQueue(.router, shard: $0) }
        try await waitUntil("the shard queues hold nothing") {
            let listed = try await broker.ctl("list_queues", "-p", "switchboard", "name", "messages")
            return listed.split(separator: "\n").filter { line in shardQueues.contains { line.hasPrefix("\($0)\t") } }
                .allSatisfy { $0.hasSuffix("\t0") }
        }
        try await router.stop()
        await connection.close()
    }

    /// A shard whose queue subscription the broker ended cannot go on: the runtime is no longer ready and
    /// stops with an error, for its supervisor to start it again.
    @Test func aShardWhoseQueueIsDeletedStopsTheRuntime() async throws {
        let broker = try TestBroker.shared
        let router = try RunningService<RouterAdapter>.start(broker, name: "router-lost-queue")
        try await router.waitUntilReady()
        let queue = ServiceTopology.shardQueue(.router, shard: 1)
        try await broker.ctl("delete_queue", "-p", "switchboard", queue)
        try await waitUntil("readiness reports the lost subscription") {
            !router.runtime.readiness.isReady && router.runtime.readiness.shards[1] == .starting
        }
        let lost = try #require(try await router.waitUntilItStops() as? SubscriptionLost)
        #expect(lost.shard == 1 && lost.queue == queue)
    }

    /// An instance that lost one shard's journal gives up all its shards rather than hold their queues: the
    /// standby of another of its shards takes that one over.
    @Test func anInstanceThatLostAJournalLetsTheStandbyTakeOverItsOtherShards() async throws {
        let broker = try TestBroker.shared
        let active = try RunningService<RouterAdapter>.start(broker, name: "router-lost-journal")
        try await active.waitUntilEveryShard(.active)
        let standby = try RunningService<RouterAdapter>.start(broker, name: "router-standby-0", shards: [0])
        try await standby.waitUntilEveryShard(.standby)

        let journal = ServiceTopology.journal(.router, shard: 1)
        try await broker.ctl("delete_queue", "-p", "switchboard", journal)
        // With journal 1 gone and journal 0 there, the broker would hold half a deployment of two shards, which
        // an instance refuses to join: journal 0 goes too, however this test ends, so the next test finds none.
        try await afterwards({ _ = try await broker.ctl("delete_queue", "-p", "switchboard", ServiceTopology.journal(.router, shard: 0)) }) {
            let lost = try #require(try await active.waitUntilItStops() as? SubscriptionLost)
            #expect(lost.shard == 1 && lost.queue == journal)
            try await standby.waitUntilEveryShard(.active, timeout: .seconds(15))
            try await standby.stop()
        }
    }

    /// An instance handed a shard whose journal holds a record it cannot read (here one of a kind a newer
    /// version might write), with no snapshot after it, stops instead of writing: its core lacks what the
    /// record held, and the seqs it would number its entries with are taken.
    @Test func anInstanceHandedAShardWhoseJournalItCannotReadStopsInsteadOfWritingIt() async throws {
        let broker = try TestBroker.shared
        let journal = ServiceTopology.journal(.router, shard: 0)
        let first = try RunningService<RouterAdapter>.start(broker, name: "router-readable", shards: [0])
        try await first.waitUntilEveryShard(.active)
        try await first.stop()
        let written = try await journalEntries(broker, service: .router, shard: 0)
        let epoch = try #require(written.last { if case .marker = $0.content { true } else { false } }?.epoch)
        let lastSeq = written.compactMap(\.seq).max() ?? 0

        // The next entry of that writer's term, of a kind this version does not know.
        let connection = try await broker.connect(name: "unreadable-writer")
        let unknown = JournalEntry(seq: lastSeq + 1, now: .init(millisecondsSinceEpoch: 0), epoch: epoch, content: .tick)
        let record = String(decoding: JournalEntry.encodeRecords([unknown], maxBytes: .max)[0].body, as: UTF8.self)
            .replacingOccurrences(of: #""kind":"tick""#, with: #""kind":"hologram""#)
        #expect(throws: (any Error).self) { try JournalEntry.decodeRecord(Array(record.utf8)) }
        let label = try #require(JournalRecordLabel([unknown][...]))
        try await connection.publisher().publish(
            Array(record.utf8), exchange: "", routingKey: journal, properties: AMQPProperties(headers: label.headers))
        await connection.close()
        // Gone however this test ends, so that the next instance on shard 0 starts from a journal it can read.
        try await afterwards({ _ = try await broker.ctl("delete_queue", "-p", "switchboard", journal) }) {
            let registry = PrometheusCollectorRegistry()
            let second = try RunningService<RouterAdapter>.start(
                broker, name: "router-cannot-read", shards: [0], metricsFactory: PrometheusMetricsFactory(registry: registry))
            let stop = try #require(try await second.waitUntilItStops() as? JournalUnreadable)
            #expect(stop.shard == 0)
            // What the alert on a standby that cannot stand in reads, and /health/ready.
            #expect(registry.emitToString().contains(#"switchboard_journal_unread{service="router",shard="0"} 1"#))
            #expect(second.runtime.readiness.unreadableJournals[0]?.contains("up to seq \(lastSeq + 1)") == true)
            #expect(!second.runtime.readiness.isReady)
            #expect(stop.record.contains("up to seq \(lastSeq + 1)"), "\(stop.record)")
            // Nothing numbered after the unreadable record: no entry with a seq that other readers already hold.
            let records = journalRecords(try await journalMessages(broker, service: .router, shard: 0)).records
            let after = records.flatMap { (try? JournalEntry.decodeRecord($0.body)) ?? [] }.filter { $0.seq ?? 0 > lastSeq }
            #expect(after.isEmpty, "\(after)")
        }
    }
}

/// Configures `desk` with the default settings and adds `ann` (no groups, capacity 1); returns once the Router
/// has told of her.
private func configureDeskWithAnn(_ desk: InboundFactory, _ publisher: AMQPPublisher, _ events: Collector) async throws {
    try await publisher.publish(desk.wire(.deskConfigure(DeskSettingsPatch())))
    try await publisher.publish(desk.wire(.agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 1))))
    try await events.waitForEvent(desk: desk.desk, "ann exists") { event in
        if case .agentChanged = event.body { return true }
        return false
    }
}

/// Runs `body`, then `cleanUp` however `body` ended: broker state a later test of the suite would trip over.
func afterwards(_ cleanUp: () async throws -> Void, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch {
        try? await cleanUp()
        throw error
    }
    try await cleanUp()
}

/// Every message of a shard's journal from its start, as appended: body and headers.
func journalMessages(
    _ broker: TestBroker, service: ServiceName, shard: Int, quiet: Duration = .seconds(1)
) async throws -> [(body: [UInt8], headers: AMQPTable)] {
    let connection = try await broker.connect(name: "journal-reader")
    let consumer = try await connection.consume(
        queue: ServiceTopology.journal(service, shard: shard), prefetch: 500,
        arguments: StreamOffset.first.consumerArguments)
    let messages = Mutex<[(body: [UInt8], headers: AMQPTable)]>([])
    let reading = Task {
        for try await delivery in consumer {
            try delivery.ack()
            messages.withLock { $0.append((delivery.body, delivery.properties.headers)) }
        }
    }
    // A journal the test reads was written to: it is not empty, and it is whole once it stops growing.
    var seen = 0
    try await waitUntil("the journal read to its end") {
        let count = messages.withLock { $0.count }
        defer { seen = count }
        if count == 0 || count != seen { try await Task.sleep(for: quiet) }
        return count > 0 && count == seen
    }
    reading.cancel()
    consumer.cancel()
    await connection.close()
    return messages.withLock { $0 }
}

/// The whole records of a journal's messages, in order, joined from their parts as a service joins them, and
/// why any parts made no record.
func journalRecords(
    _ messages: [(body: [UInt8], headers: AMQPTable)]
) -> (records: [JournalRecordAssembler.Record], dropped: [String]) {
    let assembler = JournalRecordAssembler()
    var records: [JournalRecordAssembler.Record] = []
    var dropped: [String] = []
    for message in messages {
        switch assembler.add(message.body, headers: message.headers) {
        case .record(let record): records.append(record)
        case .held: break
        case .dropped(let reason): dropped.append(reason)
        }
    }
    return (records, dropped)
}

/// The entries of a shard's journal, in order, from its start to where it stood still for `quiet`.
func journalEntries(
    _ broker: TestBroker, service: ServiceName, shard: Int, quiet: Duration = .seconds(1)
) async throws -> [JournalEntry] {
    let messages = try await journalMessages(broker, service: service, shard: shard, quiet: quiet)
    return try journalRecords(messages).records.flatMap { try JournalEntry.decodeRecord($0.body) }
}

/// Reads the journals of `shards` from their start and returns the first entry matching `matches`, or nil
/// when none did within `timeout`.
func findJournalEntry(
    _ broker: TestBroker, service: ServiceName, shards: Range<Int>, timeout: Duration = .seconds(15),
    matching matches: @escaping @Sendable (JournalEntry) -> Bool
) async throws -> JournalEntry? {
    let connection = try await broker.connect(name: "journal-reader")
    var consumers: [AMQPConsumer] = []
    for shard in shards {
        consumers.append(try await connection.consume(
            queue: ServiceTopology.journal(service, shard: shard), prefetch: 500,
            arguments: StreamOffset.first.consumerArguments))
    }
    let found = try await within(timeout) { [consumers] in
        try await withThrowingTaskGroup(of: JournalEntry?.self) { group in
            for consumer in consumers {
                group.addTask {
                    let assembler = JournalRecordAssembler()
                    for try await delivery in consumer {
                        try delivery.ack()
                        guard case .record(let whole) = assembler.add(delivery.body, headers: delivery.properties.headers)
                        else { continue }
                        let record = (try? JournalEntry.decodeRecord(whole.body)) ?? []
                        if let entry = record.first(where: matches) { return entry }
                    }
                    return nil
                }
            }
            defer { group.cancelAll() }
            // Journals never end by themselves: the first to finish is a match.
            return try await group.next() ?? nil
        }
    }
    await connection.close()
    return found
}
