import Foundation
import Synchronization
import SwitchboardAMQP
import SwitchboardTestSupport
import SwitchboardCommon
@testable import SwitchboardRuntime
import Testing

/// A core whose snapshot is larger than the broker takes in one message: the broker refuses such a message by
/// closing the channel, so a snapshot appended whole would fail its batch every time and stop the shard.
@Suite(.stopsServices) struct JournalPartsTests {
    /// The node's `max_message_size`.
    static let brokerLimit = 64 << 10
    /// The Router's largest journal message.
    static let messageLimit = 16 << 10

    @Test func aSnapshotLargerThanTheBrokerTakesIsJournaledInPartsAndReadBackWhole() async throws {
        try await TestBroker.withDedicatedNode(label: "parts", maxMessageBytes: Self.brokerLimit) { broker in
            let ann = try AgentID("ann")
            let bob = try AgentID("bob")
            let chat = try ConversationID("chat-parts")
            let (connection, events, publisher, desk) = try await deskClient(broker, name: "parts")
            let router = try RunningService<RouterAdapter>.start(
                broker, name: "router-parts", shards: [0], shardCount: 1, snapshotEveryEntries: 500,
                journalMessageBytes: Self.messageLimit)
            try await router.waitUntilEveryShard(.active)
            for body: InboundBody in [
                .deskConfigure(DeskSettingsPatch()),
                .agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 1)),
                .agentUpsert(AgentProfile(agent: bob, groups: [], capacity: 1)),
            ] {
                try await publisher.publish(desk.wire(body))
            }
            // The Router remembers the id of every message it took (to drop a duplicate): 1,000 ids of 120
            // characters make its snapshot larger than the broker takes in one message. (Few and small: this
            // test runs beside others on a loaded machine.)
            let padding = String(repeating: "x", count: 100)
            var status = AgentStatus.online
            for number in 0..<1_000 {
                var message = desk.message(.agentStatus(agent: bob, status: status))
                message.id = try MessageID("\(padding)-\(number)-\(desk.desk.rawValue)")
                try await publisher.publish(WireCodec.outgoing(message).publishedAs("switchboard"))
                status = status == .online ? .break : .online
            }
            try await waitUntil("bob's upsert and 1,000 changes of status", timeout: .seconds(120)) {
                events.routerEvents(desk: desk.desk).count { event in
                    if case .agentChanged(bob, _, _, _, _, _) = event.event.body { true } else { false }
                } == 1_001
            }
            // The shard goes on past its large snapshots.
            let request = ConversationRequest(conversation: chat, user: try UserID("user-parts"))
            try await publisher.publish(desk.wire(.conversationRequested(request)))
            try await publisher.publish(desk.wire(.agentStatus(agent: ann, status: .online)))
            try await events.waitForEvent(desk: desk.desk, "ann's ring") { $0.body.offerMade?.agent == ann }
            try await router.stop()

            let messages = try await journalMessages(broker, service: .router, shard: 0)
            let largest = messages.map(\.body.count).max() ?? 0
            #expect(largest <= Self.messageLimit, "no journal message is larger than the Router's limit")
            let (records, dropped) = journalRecords(messages)
            for reason in dropped { Issue.record("a part dropped: \(reason)") }
            let wholeRecords = records.filter { $0.body.count > Self.brokerLimit }
            #expect(!wholeRecords.isEmpty, "a record the broker would have refused whole")
            #expect(try wholeRecords.allSatisfy { record in
                try JournalEntry.decodeRecord(record.body).allSatisfy { if case .snapshot = $0.content { true } else { false } }
            }, "the records over the broker's limit are snapshots")

            // Read from its start, and from just before its first snapshot in parts (without the first marker:
            // the replay must begin at that snapshot), the journal gives the same core.
            let whole = JournalReplay<RouterAdapter>(shard: 0)
            for message in messages { _ = try await whole.receive(message.body, headers: message.headers) }
            let firstPart = try #require(messages.firstIndex { JournalRecordParts.position($0.headers)?.part == 1 })
            let fromSnapshot = JournalReplay<RouterAdapter>(shard: 0)
            var steps: [JournalStep] = []
            for message in messages[max(1, firstPart - 20)...] {
                steps += try await fromSnapshot.receive(message.body, headers: message.headers)
            }
            let restored = steps.contains { if case .restored(_, failure: nil) = $0 { true } else { false } }
            #expect(restored, "restored from a snapshot in parts")
            let wholeCore = await whole.core
            let restoredCore = await fromSnapshot.core
            #expect(wholeCore == restoredCore, "the same core from the snapshot in parts as from the whole journal")
            await connection.close()
        }
    }
}
