import SwitchboardCommon
import SwitchboardOps
import SwitchboardRuntime
import Testing

/// `SinceStart`: a journal read from a point before `--since` is shown only when the state it starts from
/// holds nothing from `--since` on.
struct SinceStartTests {
    private let since = Instant(millisecondsSinceEpoch: 1_764_093_600_000)

    private func input(_ seq: UInt64, at offset: Int64) -> JournalStep {
        .applied(AppliedStep(seq: seq, at: since + offset, input: nil, rejection: nil, actions: []))
    }

    @Test func aReadStartingAtASnapshotOlderThanSinceShowsEverythingAfterIt() {
        var start = SinceStart(since: since)
        // Read before the snapshot: an entry after its `asOf`, kept until the snapshot arrives.
        #expect(start.take([]).isEmpty)
        let restore: [JournalStep] = [
            .restored(asOf: 40, failure: nil), input(41, at: -2_000), .snapshot(seq: 42, asOf: 40, at: since + -1_000),
            input(43, at: 0),
        ]
        #expect(start.take(restore) == Array(restore.dropFirst()))
        #expect(start.verdict == .good)
        #expect(start.restoredAsOf == 40)
        #expect(start.take([input(44, at: 5)]) == [input(44, at: 5)])
    }

    @Test func aSnapshotFromSinceOnMeansTheReadBeganTooLate() {
        var start = SinceStart(since: since)
        #expect(start.take([.restored(asOf: 40, failure: nil), .snapshot(seq: 41, asOf: 40, at: since)]).isEmpty)
        #expect(start.verdict == .tooLate)
        #expect(start.take([input(42, at: 1)]).isEmpty)
    }

    @Test func aReadThatReachesTheJournalsFirstEntryHasItAll() {
        var start = SinceStart(since: since)
        let first: [JournalStep] = [.writerTerm(epoch: "a", at: since + 10), input(1, at: 10), input(2, at: 20)]
        #expect(start.take(first) == first)
        #expect(start.verdict == .good)
        #expect(start.restoredAsOf == nil)
    }

    @Test func aTakeoverFromSinceOnBeforeTheFirstSnapshotMeansTooLate() {
        var start = SinceStart(since: since)
        // The new writer's entries wait for a snapshot: those before it would never be shown.
        #expect(start.take([.writerTerm(epoch: "b", at: since + 10)]).isEmpty)
        #expect(start.verdict == .undecided)
        #expect(start.take([.restored(asOf: 50, failure: nil), .snapshot(seq: 51, asOf: 50, at: since + 500)]).isEmpty)
        #expect(start.verdict == .tooLate)

        var superseded = SinceStart(since: since)
        #expect(superseded.take([.superseded(seq: 7, epoch: "a", at: since)]).isEmpty)
        #expect(superseded.verdict == .tooLate)
    }

    @Test func aSnapshotThatCannotBeDecodedMeansReadingFromEarlier() {
        var start = SinceStart(since: since)
        #expect(start.take([.restored(asOf: 40, failure: "bad"), .snapshot(seq: 41, asOf: 40, at: since + -1)]).isEmpty)
        #expect(start.verdict == .tooLate)
    }
}
