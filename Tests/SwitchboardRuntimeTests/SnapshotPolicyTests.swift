import SwitchboardAMQP
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
}
