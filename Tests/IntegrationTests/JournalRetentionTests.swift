import Foundation
import SwitchboardAMQP
import SwitchboardTestSupport
import SwitchboardCommon
@testable import SwitchboardRuntime
import Testing

/// Recovery when retention has cut off the journal's start: what is left is snapshots and the entries
/// after them, and a crashed writer's successor must restore the desk from those alone.
@Suite(.stopsServices) struct JournalRetentionTests {
    @Test func aSuccessorRestoresTheShardFromWhatRetentionLeftOfTheJournal() async throws {
        try await TestBroker.withDedicatedNode(label: "retention") { broker in
            let ann = try AgentID("ann")
            let bob = try AgentID("bob")
            let chat = try ConversationID("chat-kept")
            let (connection, events, publisher, desk) = try await deskClient(broker, name: "retention")
            // Small segments (retention removes whole ones), which the policy below lets expire after a second.
            let retention = ServiceTopology.Retention(journalSegmentBytes: 4_000)
            func router(_ name: String) throws -> RunningService<RouterAdapter> {
                try RunningService<RouterAdapter>.start(
                    broker, name: name, shards: [0], shardCount: 1, snapshotEveryEntries: 5, snapshotOnStop: false,
                    retention: retention)
            }

            // For a stream's max-age the policy wins over the queue argument: this one outranks the deployment's
            // week (deploy/rabbitmq/definitions.json).
            try await broker.ctl(
                "set_policy", "-p", "switchboard", "--apply-to", "queues", "--priority", "20", "journals-retention-test",
                #"^switchboard\.router\.journal\."#, #"{"max-age": "1s"}"#)
            let first = try router("router-retention-1")
            try await first.waitUntilReady()
            for body: InboundBody in [
                .deskConfigure(DeskSettingsPatch(ringMs: 300_000)),
                .agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 1)),
                .agentUpsert(AgentProfile(agent: bob, groups: [], capacity: 1)),
                .agentStatus(agent: ann, status: .online),
                .conversationRequested(ConversationRequest(conversation: chat, user: try UserID("u-kept"))),
            ] {
                try await publisher.publish(desk.wire(body))
            }
            // Not inside `#require(...)`: there, in this closure, the trailing closure of this call was also run
            // for the later `waitForEvent` calls in place of their own.
            let ring = try await events.waitForEvent(desk: desk.desk, "ann's ring") { $0.body.offerMade != nil }
            let offer = try #require(ring.event.body.offerMade)

            // bob comes and goes, one input per batch, until the journal no longer starts with this
            // writer's marker: everything before some later point is gone.
            var lastStatus = AgentStatus.online
            try await waitUntil("retention cut off the journal's start", timeout: .seconds(90)) {
                for _ in 0..<20 {
                    lastStatus = lastStatus == .online ? .break : .online
                    let count = events.routerEvents(desk: desk.desk).count
                    try await publisher.publish(desk.wire(.agentStatus(agent: bob, status: lastStatus)))
                    try await waitUntil("bob's status event") { events.routerEvents(desk: desk.desk).count > count }
                }
                // The writer's marker is a record of its own, the journal's first until retention takes it.
                let first = try await findJournalEntry(broker, service: .router, shards: 0..<1) { _ in true }
                return first != nil && first?.content != .marker
            }
            let before = events.routerEvents(desk: desk.desk)
            let lastSeq = try #require(before.map(\.event.seq).max())
            try await first.stop()

            let second = try router("router-retention-2")
            try await second.waitUntilReady()
            try await second.waitUntilEveryShard(.active)
            // The ring made before the cut is still live, and bob's last status holds.
            try await publisher.publish(desk.wire(.offerAccept(agent: ann, conversation: chat, offer: offer.offer)))
            let assigned = try await events.waitForEvent(desk: desk.desk, "the kept ring is accepted") { $0.body.isAssigned }
            guard case .conversationAssigned(chat, _, ann, _, .accepted) = assigned.event.body else {
                Issue.record("unexpected \(assigned.event.body)")
                return
            }
            #expect(assigned.event.seq == lastSeq + 1, "the desk's numbering goes on with no gap")
            let next: AgentStatus = lastStatus == .online ? .break : .online
            try await publisher.publish(desk.wire(.agentStatus(agent: bob, status: next)))
            let changed = try await events.waitForEvent(desk: desk.desk, "bob's next status") { event in
                guard case .agentChanged(bob, _, _, _, _, _) = event.body else { return false }
                return event.seq > assigned.event.seq
            }
            guard case .agentChanged(bob, next, _, _, _, .command) = changed.event.body else {
                Issue.record("bob's status was not restored: \(changed.event.body)")
                return
            }
            try await second.stop()
            await connection.close()
        }
    }
}
