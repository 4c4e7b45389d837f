import Foundation

/// The broker's ceiling, as bench/c-baseline.c prints it.
struct CeilingRecord: Codable {
    var client: String
    var queueType: String
    var messages: Int
    var messagesPerSecond: Double
    var latencyP50Microseconds: Double
    var latencyP99Microseconds: Double
}

/// Resident memory of one service, from /proc/<pid>/status at the end of the run.
struct ServiceMemory: Codable {
    var service: String
    var peakKilobytes: Int
    var endKilobytes: Int
}

struct SystemReport: Codable {
    struct Target: Codable {
        var name: String
        var limit: String
        var measured: String
        var met: Bool
    }

    var load: LoadResult
    var shardsPerService: Int
    var ceiling: CeilingRecord
    var ceilingBodyBytes: Int
    /// Ceiling messages per second divided by messages per conversation.
    var ceilingConversationsPerSecond: Double
    var ratioToCeiling: Double
    var memory: [ServiceMemory]
    var targets: [Target]
}

func writeReport(_ options: ReportOptions) throws {
    let decoder = JSONDecoder()
    let load = try decoder.decode(LoadResult.self, from: Data(contentsOf: URL(fileURLWithPath: options.loadFile)))
    let ceiling = try decoder.decode(CeilingRecord.self, from: Data(contentsOf: URL(fileURLWithPath: options.ceilingFile)))
    let memory = try decoder.decode([ServiceMemory].self, from: Data(contentsOf: URL(fileURLWithPath: options.rssFile)))
    let ceilingRate = ceiling.messagesPerSecond / load.messagesPerConversation
    let ratio = load.maxConversationsPerSecond / ceilingRate
    let timerP99 = max(load.expiryToNextRing.p99Milliseconds, load.inactivityToClosure.p99Milliseconds)
    let report = SystemReport(
        load: load, shardsPerService: options.shards, ceiling: ceiling, ceilingBodyBytes: load.meanBodyBytes,
        ceilingConversationsPerSecond: ceilingRate, ratioToCeiling: ratio, memory: memory,
        targets: [
            .init(
                name: "throughput vs broker-bound ceiling", limit: "≥ 60%", measured: percent(ratio), met: ratio >= 0.6),
            .init(
                name: "request→ring p99 at 25% load", limit: "≤ 10 ms",
                measured: milliseconds(load.at25Percent.requestToRing.p99Milliseconds),
                met: load.at25Percent.requestToRing.p99Milliseconds <= 10),
            .init(
                name: "timer lateness p99 (ring expiry, inactivity)", limit: "≤ 50 ms", measured: milliseconds(timerP99),
                met: timerP99 <= 50 && load.expiryToNextRing.count > 0 && load.inactivityToClosure.count > 0),
        ])
    try writeJSON(report, to: options.jsonFile)
    try Data(markdown(report).utf8).write(to: URL(fileURLWithPath: options.markdownFile))
}

private func markdown(_ report: SystemReport) -> String {
    let load = report.load
    func latencyRow(_ name: String, _ latency: LatencySummary) -> String {
        "| \(name) | \(latency.count) | \(milliseconds(latency.p50Milliseconds)) | "
            + "\(milliseconds(latency.p99Milliseconds)) | \(milliseconds(latency.maxMilliseconds)) |"
    }
    var lines = [
        "# System benchmark",
        "",
        "Router, Notifier and Closer (one instance each, \(report.shardsPerService) shard\(report.shardsPerService == 1 ? "" : "s") "
            + "each) on one node; users and agents played by switchboard-loadbench on the same machine. Lifecycle: "
            + "request → ring → accept → agent, user, agent message → End Session.",
        "",
        "## Targets",
        "",
        "| target | limit | measured | met |",
        "|---|---|---|---|",
    ]
    lines += report.targets.map { "| \($0.name) | \($0.limit) | \($0.measured) | \($0.met ? "yes" : "no") |" }
    lines += [
        "",
        "## Throughput",
        "",
        "| | value |",
        "|---|---|",
        String(format: "| sustained maximum (closed loop, %d in flight) | %.1f conversations/s |",
            load.closedLoopConcurrency, load.maxConversationsPerSecond),
        String(format: "| broker messages per conversation (inputs %.1f + effects %.1f + journal records %.1f) | %.1f |",
            load.inputsPerConversation, load.effectsPerConversation, load.journalAppendsPerConversation,
            load.messagesPerConversation),
        String(format: "| deliveries to the services per conversation | %.1f |", load.serviceDeliveriesPerConversation),
        String(format: "| broker ceiling (C client, quorum queue, persistent %d-byte bodies, window 256, prefetch 256, best of 3) | %.0f msg/s |",
            report.ceilingBodyBytes, report.ceiling.messagesPerSecond),
        String(format: "| broker-bound ceiling (ceiling ÷ messages per conversation) | %.1f conversations/s |",
            report.ceilingConversationsPerSecond),
        "| ratio to the ceiling | \(percent(report.ratioToCeiling)) |",
        "",
        "## Latency",
        "",
        "| measurement | count | p50 | p99 | max |",
        "|---|---|---|---|---|",
        latencyRow(String(format: "request→ring at 25%% (%.1f/s)", load.at25Percent.targetPerSecond), load.at25Percent.requestToRing),
        latencyRow(String(format: "request→ring at 75%% (%.1f/s)", load.at75Percent.targetPerSecond), load.at75Percent.requestToRing),
        latencyRow("request→ring at the maximum (closed loop)", load.requestToRingAtMax),
        latencyRow("ring expiresAt → next ring (ringMs 2 s, at 25% load)", load.expiryToNextRing),
        latencyRow("inactivity deadline → closure.message (inactivityMs 2 s, at 25% load)", load.inactivityToClosure),
        "",
        "## Memory",
        "",
        "| service | peak RSS | RSS at the end |",
        "|---|---|---|",
    ]
    lines += report.memory.map { "| \($0.service) | \($0.peakKilobytes / 1024) MiB | \($0.endKilobytes / 1024) MiB |" }
    if load.publishFailures > 0 { lines += ["", "**\(load.publishFailures) publishes failed during the run.**"] }
    return lines.joined(separator: "\n") + "\n"
}

private func percent(_ ratio: Double) -> String { String(format: "%.0f%%", ratio * 100) }

private func milliseconds(_ value: Double) -> String { String(format: "%.2f ms", value) }
