import PropertyBased
import SwitchboardSimulation
import Testing

@Suite("Deterministic simulation of the three cores")
struct SimulatorTests {
    /// The fixed budget the test suite runs on every change; `make soak` runs more.
    static let budget = 200_000
    static let seeds: [UInt64] = [1, 2, 3, 4]

    @Test("every invariant holds over the fixed budget", arguments: seeds)
    func runsClean(seed: UInt64) {
        let report = Simulator.run(seed: seed, steps: Self.budget / Self.seeds.count)
        if let failure = report.failure {
            Issue.record(Comment(rawValue: failure.description))
        }
        #expect(report.steps == Self.budget / Self.seeds.count)
        // The run must have exercised what it checks, or a clean result means nothing.
        for kind in [
            "router offer.expired", "router offer.declined", "router offer.withdrawn", "router conversation.assigned",
            "rejected offer.accept offerExpired", "rejected offer.accept offerNotYours", "router agent.state",
            "workstation countdown", "outbound closure.message", "outbound inactivity.warning",
        ] {
            #expect(report.tally[kind, default: 0] > 0, "no \(kind) in the run")
        }
    }

    @Test("a lost conversation is found, shrunk to a short schedule, and replays exactly")
    func findsLostConversation() throws {
        let report = Simulator.run(seed: 7, steps: 20_000, fault: .dropRouterEvents(type: "offer.made"))
        let failure = try #require(report.failure)
        #expect(failure.violation.message.contains("lost"))
        #expect(failure.schedule.count <= 3, "shrunk to \(failure.schedule.count) steps")
        let again = Simulator.replay(seed: failure.seed, episode: failure.episode, schedule: failure.schedule, fault: .dropRouterEvents(type: "offer.made"))
        #expect(again == failure.violation)
    }

    @Test("a second closure message for one conversation is found")
    func findsDuplicateClosure() throws {
        let report = Simulator.run(seed: 11, steps: 20_000, fault: .duplicateClosures)
        let failure = try #require(report.failure)
        #expect(failure.violation.message.contains("a second closure message"))
    }

    @Test("an assignment nobody accepted is found")
    func findsUnansweredAccept() throws {
        let report = Simulator.run(seed: 5, steps: 20_000, fault: .dropRouterEvents(type: "conversation.assigned"))
        let failure = try #require(report.failure)
        #expect(!failure.schedule.isEmpty)
    }

    @Test("the same seed gives the same run")
    func sameSeedSameRun() throws {
        let first = Simulator.run(seed: 13, steps: 3_000, fault: .duplicateClosures)
        let second = Simulator.run(seed: 13, steps: 3_000, fault: .duplicateClosures)
        // A failure found (and shrunk) the same way, after the same steps and the same actions.
        let failure = try #require(first.failure)
        #expect(failure.description == second.failure?.description)
        #expect(failure.schedule == second.failure?.schedule)
        #expect(first.steps == second.steps)
        // And a run that finds nothing does the same things, as many times each.
        let clean = Simulator.run(seed: 13, steps: 3_000)
        #expect(clean.failure == nil)
        #expect(!clean.tally.isEmpty)
        #expect(clean.tally == Simulator.run(seed: 13, steps: 3_000).tally)
    }
}

@Suite("Invariants over fresh random seeds")
struct SimulatorPropertyTests {
    /// New seeds on every run; a failure names the seed and the shortest schedule, so it can be replayed.
    @Test func invariantsHoldForAnySeed() async {
        await propertyCheck(count: 40, input: Gen.int(in: 0...Int.max)) { seed in
            let report = Simulator.run(seed: UInt64(seed), steps: 500)
            #expect(report.failure == nil, Comment(rawValue: report.failure?.description ?? ""))
        }
    }
}
