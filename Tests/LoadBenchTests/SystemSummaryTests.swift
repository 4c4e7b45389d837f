import BenchOptions
import Foundation
import Testing

@testable import LoadBench

@Suite struct SystemSummaryTests {
    @Test func theMedianOfAnOddCountIsTheMiddleValueAndOfAnEvenCountTheMeanOfTheTwo() {
        #expect(median([3, 1, 2]) == 2)
        #expect(median([0.43, 0.37]) == 0.4)
        #expect(median([7]) == 7)
        #expect(median([4, 1, 3, 2]) == 2.5)
    }

    @Test func eachTargetIsJudgedOnItsMedianOverTheRounds() throws {
        let summary = try SystemSummary(rounds: [
            RoundFixture.round(ratio: 0.43, requestToRing: 90.43, expiry: 105.02, inactivity: 30),
            RoundFixture.round(ratio: 0.37, requestToRing: 32.86, expiry: 25.01, inactivity: 15),
            RoundFixture.round(ratio: 0.39, requestToRing: 37.44, expiry: 48.03, inactivity: 16),
        ])
        let throughput = summary.targets[0]
        #expect(zip(throughput.values, [0.43, 0.37, 0.39]).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(abs(throughput.median.value - 0.39) < 1e-12)
        #expect(!throughput.median.met)
        #expect(throughput.metInRounds == 0)

        let requestToRing = summary.targets[1]
        #expect(requestToRing.median.value == 37.44)

        // One round of three missed the timer target (105 ms); the median (48.03 ms) meets it.
        let timer = summary.targets[2]
        #expect(timer.values == [105.02, 25.01, 48.03])
        #expect(timer.median.value == 48.03)
        #expect(timer.metInRounds == 2)
        #expect(timer.median.met)
    }

    @Test func aTargetIsNotMetWhenAnyRoundTookNoSampleOfIt() throws {
        var silent = try RoundFixture.load()
        silent.load.expiryToNextRing.count = 0
        silent.load.expiryToNextRing.p99Milliseconds = 0
        silent.load.inactivityToClosure.p99Milliseconds = 0
        let summary = try SystemSummary(rounds: [
            RoundFixture.round(ratio: 0.4, requestToRing: 30, expiry: 25, inactivity: 15),
            silent.report(),
            RoundFixture.round(ratio: 0.4, requestToRing: 30, expiry: 48, inactivity: 15),
        ])
        let timer = summary.targets[2]
        #expect(timer.median.value == 25)
        #expect(timer.metInRounds == 2)
        #expect(!timer.median.met)
    }

    @Test func theRoundShownInDetailIsTheOneWithTheMedianThroughput() throws {
        let rounds = try [0.43, 0.37, 0.39].map {
            try RoundFixture.round(ratio: $0, requestToRing: 30, expiry: 25, inactivity: 15)
        }
        #expect(try SystemSummary(rounds: rounds).detailedRound == 3)
        #expect(try SystemSummary(rounds: Array(rounds.prefix(2))).detailedRound == 2)
        #expect(try SystemSummary(rounds: [rounds[0]]).detailedRound == 1)
    }

    @Test func roundsThatMeasureDifferentTargetsOrNoRoundsAreRefused() throws {
        let round = try RoundFixture.round(ratio: 0.4, requestToRing: 30, expiry: 25, inactivity: 15)
        var other = round
        other.targets.removeLast()
        #expect(throws: BenchError.self) { try SystemSummary(rounds: [round, other]) }
        #expect(throws: BenchError.self) { try SystemSummary(rounds: []) }
    }

    @Test func theMarkdownShowsEveryRoundTheMedianAndTheMedianRoundInDetail() throws {
        var rounds = try [0.43, 0.37, 0.39].map {
            try RoundFixture.round(ratio: $0, requestToRing: 30, expiry: 25, inactivity: 15)
        }
        rounds[2].load.closedLoopConcurrency = 123
        let text = try SystemSummary(rounds: rounds).markdown
        #expect(text.contains("| target | limit | round 1 | round 2 | round 3 | median | met in | met |"))
        #expect(text.contains("| throughput vs broker-bound ceiling | ≥ 60% | 43% | 37% | 39% | 39% | 0 of 3 | no |"))
        #expect(text.contains("## Round 3 in detail (the median throughput ratio)"))
        // The round's own sections, one heading level down, and its numbers.
        #expect(text.contains("\n### Throughput\n"))
        #expect(text.contains("| sustained maximum (closed loop, 123 in flight) | 1560.0 conversations/s |"))
        #expect(!text.contains("\n## Throughput\n"))
    }

    @Test func summarizeReadsTheRoundsReportsAndWritesTheSummary() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-summary-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let files = try [0.43, 0.37].enumerated().map { index, ratio in
            let path = folder.appendingPathComponent("round-\(index + 1).json").path
            try writeJSON(RoundFixture.round(ratio: ratio, requestToRing: 30, expiry: 25, inactivity: 15), to: path)
            return path
        }
        let json = folder.appendingPathComponent("system.json").path
        let markdown = folder.appendingPathComponent("system.md").path
        try writeSummary(SummaryOptions(parsing: ["--reports", files.joined(separator: ","), "--json", json, "--markdown", markdown]))

        let summary = try JSONDecoder().decode(SystemSummary.self, from: Data(contentsOf: URL(fileURLWithPath: json)))
        #expect(summary.rounds.count == 2)
        #expect(abs(summary.targets[0].median.value - 0.4) < 1e-12)
        #expect(try String(contentsOfFile: markdown, encoding: .utf8).contains("| 43% | 37% | 40% | 0 of 2 | no |"))

        #expect(throws: (any Error).self) {
            try writeSummary(SummaryOptions(parsing: [
                "--reports", folder.appendingPathComponent("missing.json").path, "--json", json, "--markdown", markdown,
            ]))
        }
    }
}
