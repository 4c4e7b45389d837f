import Foundation
import Prometheus
import SwitchboardAMQP
import SwitchboardTestSupport
import SwitchboardCommon
@testable import SwitchboardRuntime
import Testing

/// A starting instance reads its journal from the restart point the journal's last messages carry, not from
/// the journal's start, and goes on exactly as one that read it all.
@Suite(.stopsServices) struct JournalRestartTests {
    @Test func aStartingInstanceReadsTheJournalFromItsLatestSnapshotAndGoesOnExactly() async throws {
        try await TestBroker.withDedicatedNode(label: "restart") { broker in
            let ann = try AgentID("ann")
            let bob = try AgentID("bob")
            let (connection, events, publisher, desk) = try await deskClient(broker, name: "restart")
            let journal = ServiceTopology.journal(.router, shard: 0)
            func start(_ name: String, snapshotOnStop: Bool) throws -> (RunningService<RouterAdapter>, () -> Int) {
                let registry = PrometheusCollectorRegistry()
                let router = try RunningService<RouterAdapter>.start(
                    broker, name: name, shards: [0], shardCount: 1, snapshotEveryEntries: 20, snapshotOnStop: snapshotOnStop,
                    metricsFactory: PrometheusMetricsFactory(registry: registry))
                let recordsRead = {
                    registry.emitToString().split(separator: "\n").reduce(0) { sum, line in
                        guard line.hasPrefix("switchboard_journal_records_read_total{"),
                            let value = line.split(separator: " ").last.flatMap({ Int($0) })
                        else { return sum }
                        return sum + value
                    }
                }
                return (router, recordsRead)
            }
            /// Publishes `body` and waits for the Router's event for it: one batch, one journal record each.
            func send(_ body: InboundBody) async throws {
                let count = events.routerEvents(desk: desk.desk).count
                try await publisher.publish(desk.wire(body))
                try await waitUntil("the Router's event") { events.routerEvents(desk: desk.desk).count > count }
            }
            /// The journal's records, whole, and how many messages carry a restart point or say to read from the start.
            func readJournal() async throws -> (records: Int, restartPoints: Int, fromTheStart: Int) {
                let messages = try await journalMessages(broker, service: .router, shard: 0)
                return (
                    journalRecords(messages).records.count, messages.count { JournalRestartPoint($0.headers) != nil },
                    messages.count { $0.headers[JournalRestartPoint.offsetHeader] == .int(-1) }
                )
            }
            /// A starting instance finds the journal's end only once the broker counts its records.
            func waitUntilTheBrokerCountsTheJournal() async throws {
                try await waitUntil("the broker counts the journal's records") {
                    try await connection.queueStatus(journal)?.messageCount ?? 0 > 0
                }
            }

            let (first, _) = try start("router-restart-1", snapshotOnStop: false)
            try await first.waitUntilEveryShard(.active)
            try await send(.deskConfigure(DeskSettingsPatch(ringMs: 120_000)))
            try await send(.agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 1)))
            try await send(.agentUpsert(AgentProfile(agent: bob, groups: [], capacity: 1)))
            var status = AgentStatus.online
            for _ in 0..<150 {
                try await send(.agentStatus(agent: bob, status: status))
                status = status == .online ? .break : .online
            }
            // bob is on a break: the conversation rings ann, and the ring is live when the Router stops.
            try await send(.agentStatus(agent: ann, status: .online))
            let chat = try ConversationID("chat-restart")
            try await publisher.publish(
                desk.wire(.conversationRequested(ConversationRequest(conversation: chat, user: try UserID("user-restart")))))
            let offer = try await events.waitForEvent(desk: desk.desk, "ann's ring") { $0.body.offerMade?.agent == ann }
            try await first.stop()
            let written = try await readJournal()
            #expect(written.records > 150)
            #expect(written.restartPoints > 100, "the writer stamps its restart point on what it appends after its first snapshot")
            #expect(written.fromTheStart > 0, "before it, it says to read from the start")

            // A crash: no snapshot at stop. The next instance reads from the restart point, a few records before
            // the end: the latest snapshot after at most 20 entries, and what it needs.
            try await waitUntilTheBrokerCountsTheJournal()
            let (second, secondRead) = try start("router-restart-2", snapshotOnStop: true)
            try await second.waitUntilEveryShard(.active)
            #expect(secondRead() > 0)
            #expect(secondRead() < written.records / 4, "read \(secondRead()) of \(written.records) records")
            // The live ring is still ann's to accept, and the desk's numbering goes on with no gap.
            let made = try #require(offer.event.body.offerMade)
            try await send(.offerAccept(agent: ann, conversation: chat, offer: made.offer))
            try await events.waitForEvent(desk: desk.desk, "the conversation is assigned") { $0.body.isAssigned }
            try await second.stop()

            // A record appended by a writer that stamps no restart point (one from before they existed), last in
            // the journal: the next instance cannot tell where to begin, and reads the journal from its start.
            let marker = JournalEntry(seq: nil, now: ShardWorker<RouterAdapter>.wallClock(), epoch: "unstamped", content: .marker)
            let record = JournalEntry.encodeRecords([marker], maxBytes: 1 << 20)[0].body
            try await publisher.publish(record, exchange: "", routingKey: journal)
            #expect(try await JournalRestartPoint.find(journal, on: connection, quietPeriod: .seconds(2)) == nil)
            let (third, thirdRead) = try start("router-restart-3", snapshotOnStop: true)
            try await third.waitUntilEveryShard(.active)
            #expect(thirdRead() > written.records)
            try await send(.agentStatus(agent: bob, status: .online))
            // A takeover publishes the effects after the last snapshot again, under the same ids.
            let seqs = Dictionary(events.routerEvents(desk: desk.desk).map { ($0.id, $0.event.seq) }) { first, _ in first }.values
            #expect(Set(seqs) == Set(1...UInt64(seqs.count)), "the desk's seq has no gap or repeat across the restarts")
            try await third.stop()
            await connection.close()
        }
    }
}
