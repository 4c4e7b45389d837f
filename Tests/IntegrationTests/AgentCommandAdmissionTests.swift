import Foundation
import SwitchboardAMQP
import SwitchboardTestSupport
import SwitchboardCommon
@testable import SwitchboardRuntime
import Testing

private let ann = try! AgentID("ann")
private let chat1 = try! ConversationID("chat-1")
private let user1 = try! UserID("user-1")

/// In `RuntimeTests`, whose tests run one at a time: each runs the Router's shards.
extension RuntimeTests {
    /// `switchboard-ops` may write to `switchboard.in` (deploy/rabbitmq/definitions.json) but has no rule in
    /// `routerAdmission`; the tests' own `switchboard` user has one for every desk.
    @Test func anAgentCommandFromAUserWithoutARuleIsRefusedAndTheVerdictIsReplayedFromTheJournal() async throws {
        let broker = try TestBroker.shared
        let connection = try await broker.connect(name: "admission-client")
        let events = try await Collector.bind(connection, exchange: ContractExchange.events.rawValue)
        let deadLetters = try await Collector(
            consumer: connection.consume(queue: ServiceTopology.deadLetterQueue, prefetch: 1_000))
        let publisher = try await connection.publisher()
        let ops = try await broker.connect(name: "admission-ops", user: "switchboard-ops", password: "change-me")
        let opsPublisher = try await ops.publisher()
        let desk = InboundFactory(deskPrefix: "admission")

        // No snapshot at stop: the restart below replays these entries from the journal.
        let first = try RunningService<RouterAdapter>.start(broker, name: "router-admission-1", snapshotOnStop: false)
        try await first.waitUntilReady()
        for body: InboundBody in [
            .deskConfigure(DeskSettingsPatch(ringMs: 120_000)),
            .agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 1)),
            .agentStatus(agent: ann, status: .online),
            .conversationRequested(ConversationRequest(conversation: chat1, user: user1)),
        ] {
            try await publisher.publish(desk.wire(body))
        }
        let offer = try #require(
            try await events.waitForEvent(desk: desk.desk, "offer.made") { $0.body.offerMade != nil }.event.body.offerMade)
        let accept = InboundBody.offerAccept(agent: ann, conversation: chat1, offer: offer.offer)

        let fromOps = desk.wire(accept, as: "switchboard-ops")
        try await opsPublisher.publish(fromOps)
        let withoutUser = try WireCodec.outgoing(desk.message(accept))
        #expect(withoutUser.properties.userID == nil)
        try await publisher.publish(withoutUser)

        let refused = [fromOps.properties.messageID!, withoutUser.properties.messageID!]
        for id in refused {
            let answer = try await events.waitForEvent(desk: desk.desk, "command.rejected of \(id)") { event in
                if case .commandRejected(let rejection) = event.body { return rejection.command.rawValue == id }
                return false
            }
            guard case .commandRejected(let rejection) = answer.event.body else { continue }
            #expect(rejection.reason == .forbidden)
            #expect(rejection.agent == ann)
        }
        try await waitUntil("both refused commands are dead-lettered") {
            Set(deadLetters.deliveries.compactMap(\.properties.messageID)).isSuperset(of: refused)
        }
        let reasons = Dictionary(
            deadLetters.deliveries.map {
                ($0.properties.messageID ?? "", $0.properties.headers["x-switchboard-reason"]?.stringValue ?? "")
            },
            uniquingKeysWith: { first, _ in first })
        #expect(
            reasons[refused[0]]
                == "forbidden: broker user \"switchboard-ops\" may not send agent commands for desk \"\(desk.desk)\"")
        #expect(reasons[refused[1]] == "forbidden: an agent command must carry the broker-validated user_id property")
        #expect(!events.routerEvents(desk: desk.desk).contains { $0.event.body.isAssigned }, "a refused accept assigns nothing")

        // The same accept from an allowed user takes the ring that is still live.
        try await publisher.publish(desk.wire(accept))
        try await events.waitForEvent(desk: desk.desk, "the conversation is assigned") { $0.body.isAssigned }
        try await first.stop()
        let before = events.routerEvents(desk: desk.desk)

        // A Router that would admit everyone replays the journaled verdicts: the same ids and the same effects.
        let second = try RunningService<RouterAdapter>.start(
            broker, name: "router-admission-2", admission: { _ in nil })
        try await second.waitUntilReady()
        try await waitUntil("every event is published again") {
            let counts = Dictionary(grouping: events.routerEvents(desk: desk.desk), by: \.id).mapValues(\.count)
            return before.allSatisfy { counts[$0.id, default: 0] >= 2 }
        }
        for (id, copies) in Dictionary(grouping: events.routerEvents(desk: desk.desk), by: \.id) {
            #expect(Set(copies.map(\.event)).count == 1, "\(id) was published again with another body")
        }
        #expect(Set(events.routerEvents(desk: desk.desk).map(\.id)) == Set(before.map(\.id)), "no new effect on replay")
        try await second.stop()
        await ops.close()
        await connection.close()
    }
}
