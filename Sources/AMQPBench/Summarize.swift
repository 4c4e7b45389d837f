import BenchOptions
import Foundation

/// What bench/run.sh keeps in bench-results/amqp.json.
struct BenchReport: Codable {
    struct Figures: Codable {
        var messagesPerSecond: Double
        var latencyP50Microseconds: Double
        var latencyP99Microseconds: Double
        var cpuMicrosecondsPerMessage: Double
    }

    struct QueueResult: Codable {
        var queueType: String
        /// Medians over the rounds.
        var c: Figures
        var swift: Figures
        /// Swift's median throughput over C's.
        var swiftToCThroughput: Double
    }

    var generatedAt: String
    var brokerVersion: String?
    var processors: Int
    var messagesPerRun: Int
    var rounds: Int
    var results: [QueueResult]
    var runs: [RunRecord]
}

func summarize(_ options: SummarizeOptions) throws {
    let decoder = JSONDecoder()
    let runs = try String(contentsOfFile: options.runsFile, encoding: .utf8)
        .split(whereSeparator: \.isNewline)
        .map { try decoder.decode(RunRecord.self, from: Data($0.utf8)) }
    guard !runs.isEmpty else { throw BenchError("\(options.runsFile) holds no runs") }

    var queueTypes: [String] = []
    for run in runs where !queueTypes.contains(run.queueType) { queueTypes.append(run.queueType) }
    let results = try queueTypes.map { queueType in
        let c = try medianFigures(of: runs.filter { $0.queueType == queueType && $0.client == "c" }, queueType)
        let swift = try medianFigures(of: runs.filter { $0.queueType == queueType && $0.client == "swift" }, queueType)
        return BenchReport.QueueResult(
            queueType: queueType, c: c, swift: swift,
            swiftToCThroughput: swift.messagesPerSecond / c.messagesPerSecond)
    }
    let report = BenchReport(
        generatedAt: Date.now.formatted(.iso8601),
        brokerVersion: options.brokerVersion,
        processors: ProcessInfo.processInfo.activeProcessorCount,
        messagesPerRun: runs[0].messages,
        rounds: Set(runs.compactMap(\.round)).count,
        results: results,
        runs: runs)

    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(report).write(to: URL(fileURLWithPath: options.jsonFile))
    try Data(markdown(report).utf8).write(to: URL(fileURLWithPath: options.markdownFile))
}

private func medianFigures(of runs: [RunRecord], _ queueType: String) throws -> BenchReport.Figures {
    guard !runs.isEmpty else { throw BenchError("no runs of both clients for the \(queueType) queue") }
    return BenchReport.Figures(
        messagesPerSecond: median(runs.map(\.messagesPerSecond)),
        latencyP50Microseconds: median(runs.map(\.latencyP50Microseconds)),
        latencyP99Microseconds: median(runs.map(\.latencyP99Microseconds)),
        cpuMicrosecondsPerMessage: median(runs.map(\.cpuMicrosecondsPerMessage)))
}

private func markdown(_ report: BenchReport) -> String {
    func row(_ cells: [String]) -> String { "| " + cells.joined(separator: " | ") + " |" }
    func figures(_ queueType: String, _ client: String, _ figures: BenchReport.Figures) -> String {
        row([
            queueType, client, fixed(figures.messagesPerSecond, 0), fixed(figures.latencyP50Microseconds / 1000, 2),
            fixed(figures.latencyP99Microseconds / 1000, 2), fixed(figures.cpuMicrosecondsPerMessage, 1),
        ])
    }
    var lines = [
        "# AMQP benchmark: Swift layer against librabbitmq",
        "",
        "Generated \(report.generatedAt) by `make bench` on \(report.processors) processors"
            + (report.brokerVersion.map { ", RabbitMQ \($0)" } ?? "") + ".",
        "Each run: \(report.messagesPerRun) persistent 300-byte messages, one publisher connection (confirm window 256)",
        "and one consumer connection (prefetch 256, one ack per message). Medians of \(report.rounds) rounds;",
        "the clients take turns going first.",
        "",
        "Both programs make one publish call and one ack call per message. On the wire they differ: the C loop",
        "sends each publish with librabbitmq (three send(2) calls: method, header, body) and each ack as its own",
        "basic.ack; the Swift layer writes every burst of publishes its I/O thread finds in one send(2), and",
        "coalesces the acks taken in one turn of that thread into one basic.ack(multiple).",
        "",
        row(["queue", "client", "msg/s", "p50 ms", "p99 ms", "CPU µs/msg"]),
        row(["---", "---", "---:", "---:", "---:", "---:"]),
    ]
    for result in report.results {
        lines.append(figures(result.queueType, "C (librabbitmq)", result.c))
        lines.append(figures(result.queueType, "Swift (SwitchboardAMQP)", result.swift))
    }
    lines += ["", row(["queue", "Swift/C msg/s"]), row(["---", "---:"])]
    for result in report.results {
        lines.append(row([result.queueType, fixed(result.swiftToCThroughput * 100, 0) + " %"]))
    }
    lines += ["", "## Every run", "", row(["round", "queue", "client", "msg/s", "p50 ms", "p99 ms", "CPU µs/msg"])]
    lines.append(row(["---:", "---", "---", "---:", "---:", "---:", "---:"]))
    for run in report.runs {
        lines.append(row([
            run.round.map(String.init) ?? "", run.queueType, run.client, fixed(run.messagesPerSecond, 0),
            fixed(run.latencyP50Microseconds / 1000, 2), fixed(run.latencyP99Microseconds / 1000, 2),
            fixed(run.cpuMicrosecondsPerMessage, 1),
        ]))
    }
    return lines.joined(separator: "\n") + "\n"
}

private func fixed(_ value: Double, _ decimals: Int) -> String {
    String(format: "%.\(decimals)f", value)
}
