import SwitchboardAMQP
import SwitchboardCommon
@testable import SwitchboardRuntime
import Testing

@Suite struct SnapshotPolicyTests {
    let configuration = ShardRuntimeConfiguration(
        amqp: try! AMQPConfiguration(url: "amqp://guest:guest@localhost/"), shards: [0], snapshotEveryEntries: 1_000,
        snapshotEvery: .seconds(30), instanceName: "test")

    @Test func nothingNewIsNeverSnapshotted() {
        #expect(!configuration.snapshotDue(entries: 0, journalBytes: 0, lastSnapshotBytes: 0, sinceLastSnapshot: .seconds(600)))
    }

    @Test func enoughEntriesAreSnapshottedWhenTheJournalOutweighsTheLastSnapshot() {
        #expect(!configuration.snapshotDue(entries: 999, journalBytes: 10_000, lastSnapshotBytes: 0, sinceLastSnapshot: .zero))
        #expect(configuration.snapshotDue(entries: 1_000, journalBytes: 10_000, lastSnapshotBytes: 0, sinceLastSnapshot: .zero))
        // A core of 4 MB waits for 4 MB of journal, however many entries that takes.
        #expect(!configuration.snapshotDue(
            entries: 50_000, journalBytes: 3_999_999, lastSnapshotBytes: 4_000_000, sinceLastSnapshot: .seconds(29)))
        #expect(configuration.snapshotDue(
            entries: 50_000, journalBytes: 4_000_000, lastSnapshotBytes: 4_000_000, sinceLastSnapshot: .seconds(29)))
    }

    @Test func aQuietShardIsSnapshottedAfterTheInterval() {
        #expect(!configuration.snapshotDue(entries: 3, journalBytes: 300, lastSnapshotBytes: 4_000_000, sinceLastSnapshot: .seconds(29)))
        #expect(configuration.snapshotDue(entries: 3, journalBytes: 300, lastSnapshotBytes: 4_000_000, sinceLastSnapshot: .seconds(30)))
    }

    /// A ready snapshot waits while a deadline is closer than twice what the last append took (50 ms at
    /// least), so the timer is not late behind it; never longer than the hold limit, and never for nothing.
    @Test func aReadySnapshotWaitsForRoomBeforeTheNextDeadline() {
        let now = Instant(millisecondsSinceEpoch: 1_800_000_000_000)
        func appendsNow(deadlineIn: Milliseconds?, lastAppend: Duration = .milliseconds(10), heldFor: Duration = .zero) -> Bool {
            configuration.snapshotAppendsNow(
                nextDeadline: deadlineIn.map { now + $0 }, now: now, lastAppend: lastAppend, heldFor: heldFor)
        }
        #expect(appendsNow(deadlineIn: nil))
        #expect(!appendsNow(deadlineIn: -5))
        #expect(!appendsNow(deadlineIn: 50))
        #expect(appendsNow(deadlineIn: 51))
        #expect(!appendsNow(deadlineIn: 80, lastAppend: .milliseconds(40)))
        #expect(appendsNow(deadlineIn: 81, lastAppend: .milliseconds(40)))
        #expect(!appendsNow(deadlineIn: 10, heldFor: ShardRuntimeConfiguration.snapshotHoldLimit - .milliseconds(1)))
        #expect(appendsNow(deadlineIn: 10, heldFor: ShardRuntimeConfiguration.snapshotHoldLimit))
    }
}
