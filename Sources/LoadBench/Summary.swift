import BenchOptions
import Foundation

/// Several rounds of the system benchmark, each on a node of its own with the services started afresh.
/// The machine is noisy (the same code moved the throughput ratio by half from one run to the next), so
/// each target is judged on its median over the rounds, and every round's value is shown beside it.
struct SystemSummary: Codable {
    struct Target: Codable {
        /// The target judged on the median of the rounds' values; with no samples if a round took none.
        var median: SystemReport.Target
        /// One per round, in the order of the rounds.
        var values: [Double]
        var metInRounds: Int
    }

    var targets: [Target]
    /// The round (from 1) whose throughput ratio is the median: the one shown in detail.
    var detailedRound: Int
    var rounds: [SystemReport]

    init(rounds: [SystemReport]) throws(BenchError) {
        guard let first = rounds.first else { throw BenchError("no rounds to summarize") }
        guard rounds.allSatisfy({ $0.targets.map(\.name) == first.targets.map(\.name) }) else {
            throw BenchError("the rounds do not measure the same targets")
        }
        self.rounds = rounds
        targets = first.targets.indices.map { index in
            let perRound = rounds.map { $0.targets[index] }
            var judged = perRound[0]
            judged.value = median(perRound.map(\.value))
            judged.hasSamples = perRound.allSatisfy(\.hasSamples)
            return Target(median: judged, values: perRound.map(\.value), metInRounds: perRound.filter(\.met).count)
        }
        let byRatio = rounds.indices.sorted { rounds[$0].ratioToCeiling < rounds[$1].ratioToCeiling }
        detailedRound = byRatio[(byRatio.count - 1) / 2] + 1
    }

    var markdown: String {
        let count = rounds.count
        let roundColumns = (1...count).map { "round \($0)" }
        var lines = [
            "# System benchmark",
            "",
            count == 1
                ? "One round, on a node of its own with the services started afresh. With more rounds "
                    + "(`BENCH_SYSTEM_ROUNDS`), each target is judged on its median over them."
                : "\(count) rounds, each on a node of its own with the services started afresh. Each target is judged "
                    + "on its median over the rounds: on this shared machine one run can differ from the next by half.",
            "",
            "## Targets",
            "",
            "| target | limit | " + roundColumns.joined(separator: " | ") + " | median | met in | met |",
            "|---|---|" + String(repeating: "---|", count: count) + "---|---|---|",
        ]
        lines += targets.map { target in
            let judged = target.median
            return "| \(judged.name) | \(judged.limit) | " + target.values.map(judged.unit.format).joined(separator: " | ")
                + " | \(judged.measured) | \(target.metInRounds) of \(count) | \(judged.met ? "yes" : "no") |"
        }
        lines += ["", "## Round \(detailedRound) in detail (the median throughput ratio)", ""]
        lines += markdownSections(rounds[detailedRound - 1], heading: "###")
        return lines.joined(separator: "\n") + "\n"
    }
}

func writeSummary(_ options: SummaryOptions) throws {
    let decoder = JSONDecoder()
    let rounds = try options.reportFiles.map { file in
        try decoder.decode(SystemReport.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
    }
    let summary = try SystemSummary(rounds: rounds)
    try writeJSON(summary, to: options.jsonFile)
    try Data(summary.markdown.utf8).write(to: URL(fileURLWithPath: options.markdownFile))
}
