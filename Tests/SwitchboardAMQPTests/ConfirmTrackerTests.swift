import Testing

@testable import SwitchboardAMQP

struct ConfirmTrackerTests {
    private typealias Tracker = ConfirmTracker<String>

    private func settle(_ tracker: inout Tracker, tag: UInt64, multiple: Bool, acknowledged: Bool = true) -> [String: Tracker.Outcome] {
        var outcomes: [String: Tracker.Outcome] = [:]
        tracker.settle(tag: tag, multiple: multiple, acknowledged: acknowledged) { outcomes[$0] = $1 }
        return outcomes
    }

    @Test func tagsCountFromOneAndTheWindowBoundsWhatIsInFlight() {
        var tracker = Tracker(window: 3)
        #expect(tracker.track("a") == 1)
        #expect(tracker.track("b") == 2)
        #expect(tracker.hasRoom)
        #expect(tracker.track("c") == 3)
        #expect(!tracker.hasRoom)
        #expect(settle(&tracker, tag: 1, multiple: false) == ["a": .confirmed])
        #expect(tracker.hasRoom)
        #expect(tracker.track("d") == 4)
    }

    @Test func aMultipleAckSettlesEverythingUpToItsTag() {
        var tracker = Tracker(window: 8)
        for name in ["a", "b", "c", "d"] { _ = tracker.track(name) }
        #expect(settle(&tracker, tag: 3, multiple: true) == ["a": .confirmed, "b": .confirmed, "c": .confirmed])
        #expect(tracker.inFlightCount == 1)
        #expect(tracker.oldestTag == 4)
    }

    @Test func aMultipleNackFailsEverythingUpToItsTag() {
        var tracker = Tracker(window: 8)
        for name in ["a", "b", "c"] { _ = tracker.track(name) }
        #expect(settle(&tracker, tag: 2, multiple: true, acknowledged: false) == ["a": .nacked, "b": .nacked])
        #expect(settle(&tracker, tag: 3, multiple: false) == ["c": .confirmed])
        #expect(tracker.isEmpty)
    }

    @Test func outOfOrderAcksKeepTheWindowAnchoredAtTheOldestUnsettledTag() {
        var tracker = Tracker(window: 3)
        for name in ["a", "b", "c"] { _ = tracker.track(name) }
        #expect(settle(&tracker, tag: 2, multiple: false) == ["b": .confirmed])
        // "a" is still out, so the span 1...3 fills the window even though only two are in flight.
        #expect(!tracker.hasRoom)
        #expect(settle(&tracker, tag: 1, multiple: false) == ["a": .confirmed])
        #expect(tracker.oldestTag == 3)
        #expect(tracker.hasRoom)
    }

    @Test func duplicateAndUnknownTagsAreIgnored() {
        var tracker = Tracker(window: 4)
        _ = tracker.track("a")
        #expect(settle(&tracker, tag: 1, multiple: false) == ["a": .confirmed])
        #expect(settle(&tracker, tag: 1, multiple: false).isEmpty)
        #expect(settle(&tracker, tag: 9, multiple: true).isEmpty)
    }

    @Test func aReturnedMessageFailsWhenItsAckArrives() {
        var tracker = Tracker(window: 4)
        for name in ["a", "b", "b"] { _ = tracker.track(name) }
        #expect(tracker.markReturned(code: 312, text: "NO_ROUTE") { $0 == "b" })
        #expect(tracker.markReturned(code: 312, text: "NO_ROUTE") { $0 == "b" })
        #expect(!tracker.markReturned(code: 312, text: "NO_ROUTE") { $0 == "b" })
        var outcomes: [Tracker.Outcome] = []
        tracker.settle(tag: 3, multiple: true, acknowledged: true) { outcomes.append($1) }
        #expect(outcomes == [.confirmed, .returned(code: 312, text: "NO_ROUTE"), .returned(code: 312, text: "NO_ROUTE")])
    }

    @Test func removingAllHandsBackTheOldestFirstAndRestartsTagsAtOne() {
        var tracker = Tracker(window: 4)
        for name in ["a", "b", "c"] { _ = tracker.track(name) }
        _ = settle(&tracker, tag: 2, multiple: false)
        var removed: [String] = []
        tracker.removeAll { removed.append($0) }
        #expect(removed == ["a", "c"])
        #expect(tracker.isEmpty)
        #expect(tracker.track("d") == 1)
    }

    @Test func theRingWrapsAroundManyTimes() {
        var tracker = Tracker(window: 3)
        for round in 0..<100 {
            let tag = tracker.track("m\(round)")
            #expect(settle(&tracker, tag: tag, multiple: false) == ["m\(round)": .confirmed])
        }
        #expect(tracker.nextTag == 101)
        #expect(tracker.isEmpty)
    }
}
