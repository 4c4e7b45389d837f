import Foundation
import Synchronization
import SwitchboardAMQP
import SwitchboardCommon
import SwitchboardOps
import SwitchboardRuntime
import SwitchboardTestSupport
import Testing

/// Reading a shard's state the way `switchboard desk show` does: from a recent snapshot, not from the
/// journal's first record, with the same result.
@Suite(.stopsServices) struct JournalCatchUpTests {
    /// Keeps nothing of the history but where the replay started and what could not be read.
    private final class StateReader: JournalHistoryReader {
        let startedAsOf = Mutex<UInt64?>(nil)
        let atRestartPoint = Mutex<Bool?>(nil)
        let unreadableCount = Mutex(0)

        func history(_ steps: [JournalStep], of journal: String) -> Bool { false }

        func startedFromSnapshot(asOf: UInt64, atRestartPoint: Bool, of journal: String) {
            startedAsOf.withLock { $0 = asOf }
            self.atRestartPoint.withLock { $0 = atRestartPoint }
        }

        func unreadable(_ error: any Error, of journal: String) {
            unreadableCount.withLock { $0 += 1 }
        }
    }

    @Test func anIdleShardsStateIsReadFromItsLastSnapshotAndEqualsTheWholeJournals() async throws {
        try await TestBroker.withDedicatedNode(label: "catch-up") { broker in
            let ann = try AgentID("ann")
            let (connection, events, publisher, desk) = try await deskClient(broker, name: "catch-up")
            // A snapshot after every batch: the journal ends with one once the shard is idle.
            let router = try RunningService<RouterAdapter>.start(
                broker, name: "router-catch-up", shards: [0], shardCount: 1, snapshotEveryBatch: true)
            try await router.waitUntilReady()

            func send(_ body: InboundBody, _ description: String, until done: @escaping (RouterEvent) -> Bool) async throws {
                try await publisher.publish(desk.wire(body))
                try await events.waitForEvent(desk: desk.desk, description, where: done)
            }
            func chat(_ number: Int) throws -> ConversationID { try ConversationID("c\(number)") }
            try await send(.deskConfigure(DeskSettingsPatch(autoAccept: true)), "configured") { $0.seq == 1 }
            try await send(.agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 3)), "ann") { $0.seq == 2 }
            try await send(.agentStatus(agent: ann, status: .online), "ann online") { $0.seq == 3 }
            // A time before the last batches, so before the journal's latest snapshots: the last message's restart
            // point is the snapshot's before it (its writer learns of a snapshot as it reads it back).
            let beforeTheRequests = WallClock.now()
            for number in 1...5 {
                let conversation = try chat(number)
                try await send(
                    .conversationRequested(ConversationRequest(conversation: conversation, user: try UserID("u\(number)"))),
                    "c\(number) assigned or queued"
                ) { event in
                    switch event.body {
                    case .conversationAssigned(conversation, _, _, _, _), .conversationQueued(conversation, _, _, _): true
                    default: false
                    }
                }
            }
            let fourth = try chat(4)
            try await send(.sessionEnd(agent: ann, conversation: try chat(1)), "c4 assigned") { event in
                if case .conversationAssigned(fourth, _, _, _, _) = event.body { return true }
                return false
            }

            // The whole journal, from its first record.
            let whole = StateReader()
            let read = try await JournalCatchUp<RouterAdapter>(connection: connection, quietPeriod: .seconds(2))
                .catchUp(shard: 0, since: nil, needsState: true, reader: whole)
            let expected = try #require(await read.replay.core.state(of: desk.desk))
            #expect(expected.agents.map(\.load) == [3])
            #expect(expected.sessions.map(\.conversation) == [try chat(2), try chat(3), try chat(4)])
            #expect(expected.sessions.allSatisfy { $0.mode == .autoAccepted })
            #expect(expected.waiting.map(\.conversation) == [try chat(5)])
            #expect(whole.startedAsOf.withLock { $0 } == nil)

            // Nothing happened from a moment on (here: one to come): the state comes from the journal's last
            // snapshot, read from the restart point its last message names, and it is the same. (The restart
            // point is looked for once the broker counts the journal's records, a few seconds after appends.)
            try await waitUntil("the broker counts the journal's records") {
                try await connection.queueStatus(ServiceTopology.journal(.router, shard: 0))?.messageCount ?? 0 > 0
            }
            let recent = StateReader()
            let catchUp = JournalCatchUp<RouterAdapter>(connection: connection, quietPeriod: .seconds(2), readWholeUpTo: -1)
            let fromSnapshot = try await catchUp.catchUp(
                shard: 0, since: WallClock.now() + 60_000, needsState: true, reader: recent)
            let asOf = try #require(recent.startedAsOf.withLock { $0 }, "read from a snapshot")
            #expect(asOf > 3)
            #expect(recent.atRestartPoint.withLock { $0 } == true)
            #expect(fromSnapshot.replay.begunAtRestartPoint)
            #expect(await fromSnapshot.replay.core.state(of: desk.desk) == expected)

            // From a time the latest snapshot does not precede: the restart point would hide what happened from
            // then on, so the read begins earlier (here: at the journal's start, 15 s before), and still ends in the
            // same state.
            let earlier = StateReader()
            let fromEarlier = try await catchUp.catchUp(shard: 0, since: beforeTheRequests, needsState: true, reader: earlier)
            #expect(!fromEarlier.replay.begunAtRestartPoint)
            #expect(earlier.atRestartPoint.withLock { $0 } != true)
            #expect(await fromEarlier.replay.core.state(of: desk.desk) == expected)
            for reader in [whole, recent, earlier] { #expect(reader.unreadableCount.withLock { $0 } == 0) }
            try await router.stop()
        }
    }
}
