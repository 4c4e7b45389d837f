import Foundation
import Testing

@testable import LoadBench

/// One round's measurements, from a real run of bench/system.sh, for the tests to change what they judge.
struct RoundFixture: Decodable {
    var load: LoadResult
    var ceiling: BaselineRecord
    var memory: [ServiceMemory]
    var shardsPerService: Int

    static func load() throws -> RoundFixture {
        let url = try #require(Bundle.module.url(forResource: "round", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(RoundFixture.self, from: Data(contentsOf: url))
    }

    func report(ceilingBrokerCPUSeconds: Double? = nil) -> SystemReport {
        SystemReport(
            load: load, ceiling: ceiling, memory: memory, shards: shardsPerService,
            ceilingBrokerCPUSeconds: ceilingBrokerCPUSeconds)
    }

    /// A round whose throughput ratio, request→ring p99 at 25% and timer p99s are the ones given.
    static func round(ratio: Double, requestToRing: Double, expiry: Double, inactivity: Double) throws -> SystemReport {
        var round = try load()
        round.load.messagesPerConversation = 10
        round.ceiling.messagesPerSecond = 40_000
        round.load.maxConversationsPerSecond = ratio * 4_000
        round.load.at25Percent.requestToRing.p99Milliseconds = requestToRing
        round.load.expiryToNextRing.p99Milliseconds = expiry
        round.load.inactivityToClosure.p99Milliseconds = inactivity
        return round.report()
    }
}

extension SystemReport {
    func target(_ prefix: String) throws -> Target {
        try #require(targets.first { $0.name.hasPrefix(prefix) })
    }
}

@Suite struct SystemReportTests {
    @Test func throughputIsJudgedAgainstTheCeilingDividedByMessagesPerConversation() throws {
        var round = try RoundFixture.load()
        round.load.messagesPerConversation = 12.5
        round.ceiling.messagesPerSecond = 40_000
        // The ceiling carries 3,200 conversations/s; 60% of it is 1,920.
        round.load.maxConversationsPerSecond = 1_920
        let atTarget = round.report()
        #expect(atTarget.ceilingConversationsPerSecond == 3_200)
        #expect(abs(atTarget.ratioToCeiling - 0.6) < 1e-12)
        #expect(try atTarget.target("throughput").met)

        round.load.maxConversationsPerSecond = 1_900
        let below = round.report()
        #expect(try !below.target("throughput").met)
        #expect(try below.target("throughput").measured == "59%")
        #expect(try below.target("throughput").limit == "≥ 60%")
    }

    @Test func requestToRingIsJudgedOnTheP99OfThe25PercentPhase() throws {
        var round = try RoundFixture.load()
        round.load.at25Percent.requestToRing.p99Milliseconds = 10
        round.load.atTrickle.requestToRing.p99Milliseconds = 50
        round.load.at75Percent.requestToRing.p99Milliseconds = 50
        #expect(try round.report().target("request→ring").met)

        round.load.at25Percent.requestToRing.p99Milliseconds = 10.01
        round.load.atTrickle.requestToRing.p99Milliseconds = 1
        #expect(try !round.report().target("request→ring").met)
        #expect(try round.report().target("request→ring").measured == "10.01 ms")
    }

    @Test func timerLatenessIsTheLaterOfTheTwoTimers() throws {
        var round = try RoundFixture.load()
        round.load.expiryToNextRing.p99Milliseconds = 20
        round.load.inactivityToClosure.p99Milliseconds = 51
        let late = try round.report().target("timer")
        #expect(late.value == 51)
        #expect(!late.met)

        round.load.inactivityToClosure.p99Milliseconds = 50
        #expect(try round.report().target("timer").met)
    }

    @Test func aTimerThatNeverFiredIsNotMet() throws {
        var round = try RoundFixture.load()
        round.load.inactivityToClosure.count = 0
        round.load.inactivityToClosure.p99Milliseconds = 0
        round.load.expiryToNextRing.p99Milliseconds = 0
        let timer = try round.report().target("timer")
        #expect(!timer.hasSamples)
        #expect(!timer.met)
    }

    @Test func brokerCPUPerMessageComesFromTheClosedLoopAndTheCeiling() throws {
        var round = try RoundFixture.load()
        round.load.messagesPerConversation = 10
        round.load.maxPhaseConversations = 20_000
        round.load.cpuAtMax = [ProcessCPU(name: "broker", seconds: 12), ProcessCPU(name: "router", seconds: 4)]
        round.ceiling.messages = 100_000
        let cpu = round.report(ceilingBrokerCPUSeconds: 3).cpu
        // 12 s over 200,000 messages; 3 s over 100,000.
        #expect(try abs(#require(cpu.brokerMicrosecondsPerMessage) - 60) < 1e-9)
        #expect(try abs(#require(cpu.ceilingBrokerMicrosecondsPerMessage) - 30) < 1e-9)
    }

    @Test func theRoundsMarkdownShowsEveryTargetsVerdict() throws {
        let report = try RoundFixture.round(ratio: 0.37, requestToRing: 37.44, expiry: 48.03, inactivity: 16)
        let text = markdown(report)
        #expect(text.contains("| throughput vs broker-bound ceiling | ≥ 60% | 37% | no |"))
        #expect(text.contains("| request→ring p99 at 25% load | ≤ 10.00 ms | 37.44 ms | no |"))
        #expect(text.contains("| ≤ 50.00 ms | 48.03 ms | yes |"))
    }

    @Test func aReportReadsBackAsItWasWritten() throws {
        let report = try RoundFixture.round(ratio: 0.4, requestToRing: 30, expiry: 25, inactivity: 15)
        let decoded = try JSONDecoder().decode(SystemReport.self, from: JSONEncoder().encode(report))
        #expect(decoded.targets.map(\.value) == report.targets.map(\.value))
        #expect(decoded.targets.map(\.met) == [false, false, true])
    }
}
