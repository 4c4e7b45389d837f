import Foundation

/// What bench/c-baseline.c prints: for the broker's ceiling, and for the hop probe.
struct BaselineRecord: Codable {
    var client: String
    var queueType: String
    var messages: Int
    var messagesPerSecond: Double
    var latencyP50Microseconds: Double
    var latencyP99Microseconds: Double
    var latencyMaxMicroseconds: Double
}

/// Resident memory of one service, from /proc/<pid>/status at the end of the run.
struct ServiceMemory: Codable {
    var service: String
    var peakKilobytes: Int
    var endKilobytes: Int
}

struct SystemReport: Codable {
    /// One target: the measurement and the limit as numbers; what the report prints follows from them.
    struct Target: Codable {
        var name: String
        /// The measurement, in `unit`.
        var value: Double
        /// The limit, in `unit`.
        var limitValue: Double
        /// Whether the target is a floor (throughput) rather than a ceiling (latencies).
        var atLeast: Bool
        var unit: Unit
        /// False when the run took no sample of it (a timer that never fired): the target is not met then.
        var hasSamples = true

        enum Unit: String, Codable {
            case ratio, milliseconds

            func format(_ value: Double) -> String {
                switch self {
                case .ratio: percent(value)
                case .milliseconds: LoadBench.milliseconds(value)
                }
            }
        }

        var limit: String { (atLeast ? "≥ " : "≤ ") + unit.format(limitValue) }
        var measured: String { unit.format(value) }
        var met: Bool { hasSamples && (atLeast ? value >= limitValue : value <= limitValue) }
    }

    var load: LoadResult
    var shardsPerService: Int
    var ceiling: BaselineRecord
    var ceilingBodyBytes: Int
    /// Ceiling messages per second divided by messages per conversation.
    var ceilingConversationsPerSecond: Double
    var ratioToCeiling: Double
    var memory: [ServiceMemory]
    var cpu: CPUSummary
    var targets: [Target]

    /// The throughput target: this share of the broker-bound ceiling.
    static let throughputTarget = 0.6
    /// The most request→ring may take at p99 at 25% load.
    static let requestToRingTargetMilliseconds = 10.0
    /// The most a timer's end-to-end lateness may be at p99.
    static let timerLatenessTargetMilliseconds = 50.0
}

/// Where the machine's CPU went during the closed-loop phase, and what the broker spent per message
/// there and in the ceiling run.
struct CPUSummary: Codable {
    var cores: Int
    var windowSeconds: Double
    var processes: [ProcessCPU]
    /// Broker CPU per broker message (inputs, effects, journal records) in the closed-loop phase.
    var brokerMicrosecondsPerMessage: Double?
    /// Broker CPU per message in the ceiling round that counts.
    var ceilingBrokerMicrosecondsPerMessage: Double?
    /// Conversations per second if the broker had every core at its measured cost per conversation and
    /// the services and the load generator cost nothing: a bound no run on this machine can pass.
    var brokerOnlyConversationsPerSecond: Double?
    /// The throughput target in conversations per second.
    var targetConversationsPerSecond: Double
    /// The cores each process would keep busy at the target, at the CPU per conversation it spent here.
    var coresAtTarget: [ProcessCores]

    struct ProcessCores: Codable {
        var name: String
        var cores: Double
    }

    init(
        load: LoadResult, ceiling: BaselineRecord, ceilingConversationsPerSecond: Double, ceilingBrokerCPUSeconds: Double?
    ) {
        cores = ProcessInfo.processInfo.activeProcessorCount
        windowSeconds = load.cpuWindowSeconds
        processes = load.cpuAtMax
        targetConversationsPerSecond = SystemReport.throughputTarget * ceilingConversationsPerSecond
        coresAtTarget = processes.map { [target = targetConversationsPerSecond] process in
            ProcessCores(name: process.name, cores: process.seconds / Double(max(load.maxPhaseConversations, 1)) * target)
        }
        let messages = load.messagesPerConversation * Double(load.maxPhaseConversations)
        if let broker = processes.first(where: { $0.name == "broker" }), messages > 0, broker.seconds > 0 {
            brokerMicrosecondsPerMessage = broker.seconds / messages * 1e6
            brokerOnlyConversationsPerSecond = Double(cores) / (broker.seconds / Double(load.maxPhaseConversations))
        }
        ceilingBrokerMicrosecondsPerMessage = ceilingBrokerCPUSeconds.map { $0 / Double(ceiling.messages) * 1e6 }
    }
}

extension SystemReport {
    /// Joins one run's measurements with the broker's ceiling (and its CPU seconds, if read) and the services'
    /// memory, and judges the targets.
    init(load: LoadResult, ceiling: BaselineRecord, memory: [ServiceMemory], shards: Int, ceilingBrokerCPUSeconds: Double?) {
        let ceilingRate = ceiling.messagesPerSecond / load.messagesPerConversation
        let ratio = load.maxConversationsPerSecond / ceilingRate
        let timerP99 = max(load.expiryToNextRing.p99Milliseconds, load.inactivityToClosure.p99Milliseconds)
        self.init(
            load: load, shardsPerService: shards, ceiling: ceiling, ceilingBodyBytes: load.meanBodyBytes,
            ceilingConversationsPerSecond: ceilingRate, ratioToCeiling: ratio, memory: memory,
            cpu: CPUSummary(
                load: load, ceiling: ceiling, ceilingConversationsPerSecond: ceilingRate,
                ceilingBrokerCPUSeconds: ceilingBrokerCPUSeconds),
            targets: [
                .init(
                    name: "throughput vs broker-bound ceiling", value: ratio, limitValue: Self.throughputTarget,
                    atLeast: true, unit: .ratio),
                .init(
                    name: "request→ring p99 at 25% load", value: load.at25Percent.requestToRing.p99Milliseconds,
                    limitValue: Self.requestToRingTargetMilliseconds, atLeast: false, unit: .milliseconds),
                .init(
                    name: "timer lateness p99, end to end (ring expiry → next ring, inactivity → closure message)",
                    value: timerP99, limitValue: Self.timerLatenessTargetMilliseconds, atLeast: false,
                    unit: .milliseconds,
                    hasSamples: load.expiryToNextRing.count > 0 && load.inactivityToClosure.count > 0),
            ])
    }
}

func writeReport(_ options: ReportOptions) throws {
    let decoder = JSONDecoder()
    let load = try decoder.decode(LoadResult.self, from: Data(contentsOf: URL(fileURLWithPath: options.loadFile)))
    let ceiling = try decoder.decode(BaselineRecord.self, from: Data(contentsOf: URL(fileURLWithPath: options.ceilingFile)))
    let memory = try decoder.decode([ServiceMemory].self, from: Data(contentsOf: URL(fileURLWithPath: options.rssFile)))
    let report = SystemReport(
        load: load, ceiling: ceiling, memory: memory, shards: options.shards,
        ceilingBrokerCPUSeconds: options.ceilingBrokerCPUSeconds)
    try writeJSON(report, to: options.jsonFile)
    try Data(markdown(report).utf8).write(to: URL(fileURLWithPath: options.markdownFile))
}

func markdown(_ report: SystemReport) -> String {
    let title = [
        "# System benchmark",
        "",
        "Router, Notifier and Closer (one instance each, \(report.shardsPerService) shard\(report.shardsPerService == 1 ? "" : "s") "
            + "each) on one node; users and agents played by switchboard-loadbench on the same machine. Lifecycle: "
            + "request → ring → accept → agent, user, agent message → End Session.",
        "",
    ]
    return (title + markdownSections(report, heading: "##")).joined(separator: "\n") + "\n"
}

/// The report's sections, from its targets on, each under a `heading` (`##` in a round's own report, one level
/// down where the summary shows it).
func markdownSections(_ report: SystemReport, heading: String) -> [String] {
    let load = report.load
    func latencyRow(_ name: String, _ latency: LatencySummary) -> String {
        "| \(name) | \(latency.count) | \(milliseconds(latency.p50Milliseconds)) | "
            + "\(milliseconds(latency.p99Milliseconds)) | \(milliseconds(latency.maxMilliseconds)) |"
    }
    /// The legs of the row above, to the whole millisecond (the services' times are wall-clock milliseconds).
    func legRows(_ legs: RingLegs.Summary, from start: String) -> [String] {
        [
            latencyRow("  of which: \(start) → the Router's batch", legs.toRouter),
            latencyRow("  of which: the Router's batch → the Notifier's batch", legs.routerToNotifier),
            latencyRow("  of which: the Notifier's batch → the ring at the workstation", legs.notifierToWorkstation),
        ]
    }
    /// A paced phase's request→ring legs, and the broker's floor measured beside the phase.
    func legRows(_ phase: PacedPhase) -> [String] {
        var rows = legRows(phase.requestToRingLegs, from: "request")
        if let floor = phase.brokerFloor {
            rows += [
                latencyRow(
                    "  beside it: one quorum-queue hop alone (C client, one message at a time, \(BrokerProbe.rate)/s)", floor.hop),
                latencyRow(
                    "  beside it: request→ring's broker operations alone, no service code (the same C client and messages)",
                    floor.chain),
            ]
        }
        return rows
    }
    var lines = [
        "\(heading) Targets",
        "",
        "| target | limit | measured | met |",
        "|---|---|---|---|",
    ]
    lines += report.targets.map { "| \($0.name) | \($0.limit) | \($0.measured) | \($0.met ? "yes" : "no") |" }
    lines += [
        "",
        "\(heading) Throughput",
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
    ]
    lines += cpuSection(report, heading: heading)
    lines += [
        "",
        "\(heading) Latency",
        "",
        "| measurement | count | p50 | p99 | max |",
        "|---|---|---|---|---|",
        latencyRow(String(format: "request→ring at a trickle (%.1f/s, before the maximum)", load.atTrickle.targetPerSecond),
            load.atTrickle.requestToRing),
    ]
    lines += legRows(load.atTrickle)
    lines += [
        latencyRow(String(format: "request→ring at 25%% (%.1f/s)", load.at25Percent.targetPerSecond), load.at25Percent.requestToRing),
    ]
    lines += legRows(load.at25Percent)
    lines += [
        latencyRow(String(format: "request→ring at 75%% (%.1f/s)", load.at75Percent.targetPerSecond), load.at75Percent.requestToRing),
        latencyRow("request→ring at the maximum (closed loop)", load.requestToRingAtMax),
        latencyRow("ring expiresAt → next ring (ringMs 2 s, at 25% load)", load.expiryToNextRing),
    ]
    lines += legRows(load.expiryToNextRingLegs, from: "expiresAt")
    lines += [
        latencyRow("inactivity deadline → closure.message (inactivityMs 2 s, at 25% load)", load.inactivityToClosure),
    ]
    lines += load.timerLatenessAt25Percent.map { timer in
        func atMost(_ value: Double?) -> String { value.map { "≤ " + milliseconds($0) } ?? (timer.ticks > 0 ? "past the largest bucket" : "–") }
        return "|   the \(timer.service)'s own timer at 25% (deadline → the batch that journals the tick; bucket bounds) | "
            + "\(timer.ticks) | \(atMost(timer.p50AtMostMilliseconds)) | \(atMost(timer.p99AtMostMilliseconds)) | |"
    }
    if let floor = load.at25Percent.brokerFloor {
        let chain = floor.chain.p99Milliseconds
        lines += [
            "",
            "request→ring crosses two quorum-queue hops in a row (the request into the Router's shard queue, the "
                + "Router's event into the Notifier's), a journal append, its confirm and its read-back in each service, "
                + "and a classic-queue hop to the workstation. The broker probe does just that with no code of ours in it, "
                + "one message at a time (bench/c-baseline.c --stages 2). Beside the 25% phase, one quorum-queue hop alone "
                + "had a p99 of \(milliseconds(floor.hop.p99Milliseconds)), and the whole chain "
                + "\(milliseconds(chain))"
                + (chain > SystemReport.requestToRingTargetMilliseconds
                    ? ": more than the request→ring target on this machine, whatever the services did." : ".")
                + String(format: " request→ring's own p99 was %.1f times the chain's.", load.at25Percent.requestToRing.p99Milliseconds / chain),
        ]
    }
    lines += [
        "",
        "The timer target is judged end to end, from the deadline to what the workstation or the user receives. The "
            + "services' own timer lateness is the first part of that: the Router's for a ring expiry, the Closer's for "
            + "an inactivity close.",
    ]
    lines += batchSection(load.batchesAt25Percent, heading: heading)
    lines += snapshotSection(load.snapshots, heading: heading)
    lines += [
        "",
        "\(heading) Memory",
        "",
        "| service | peak RSS | RSS at the end |",
        "|---|---|---|",
    ]
    lines += report.memory.map { "| \($0.service) | \($0.peakKilobytes / 1024) MiB | \($0.endKilobytes / 1024) MiB |" }
    if load.publishFailures > 0 { lines += ["", "**\(load.publishFailures) publishes failed during the run.**"] }
    return lines
}

/// Where request→ring's time goes inside the services at 25% load: how long deliveries waited for their batch,
/// and each stage of the batch.
private func batchSection(_ batches: [BatchCosts], heading: String) -> [String] {
    func ms(_ value: Double?) -> String { value.map(milliseconds) ?? "–" }
    var lines = [
        "",
        "\(heading) Batches at 25% load (means over the phase)",
        "",
        "| service | batches | deliveries per batch | inbox wait | journal confirm | apply | effects confirm | whole batch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += batches.map { costs in
        "| \(costs.service) | \(costs.batches) | \(costs.meanSize.map { String(format: "%.1f", $0) } ?? "–") | "
            + "\(ms(costs.inboxWaitMeanMilliseconds)) | \(ms(costs.journalConfirmMeanMilliseconds)) | "
            + "\(ms(costs.applyMeanMilliseconds)) | \(ms(costs.effectsConfirmMeanMilliseconds)) | "
            + "\(ms(costs.wholeMeanMilliseconds)) |"
    }
    lines += [
        "",
        "A shard takes whatever deliveries wait as one batch; they waited for it while the batch before was under way "
            + "(inbox wait, from the oldest delivery's arrival). The batch's entries are appended to the journal and "
            + "confirmed (journal confirm), then applied as read back (apply); its effects go out once the last batch's "
            + "are confirmed, and are confirmed while the next batch is journaled (effects confirm). The whole batch "
            + "runs from its start to its effects published.",
    ]
    return lines
}

/// Appending a snapshot holds its shard's journal, and whatever comes meanwhile waits: the snapshots' sizes and
/// append times tell how much they weigh on latency, and their holds how often a deadline was near.
private func snapshotSection(_ snapshots: [SnapshotCosts], heading: String) -> [String] {
    func ms(_ value: Double?) -> String { value.map(milliseconds) ?? "–" }
    func atMost(_ value: Double?, _ count: Int) -> String { value.map { "≤ " + milliseconds($0) } ?? (count > 0 ? "past the largest bucket" : "–") }
    var lines = [
        "",
        "\(heading) Snapshots (closed-loop phase to the end of the 75% phase)",
        "",
        "| service | snapshots | largest latest | append: mean | over 25 ms | longest | held for a deadline: mean | longest |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += snapshots.map { costs in
        "| \(costs.service) | \(costs.snapshots) | "
            + (costs.largestLatestBytes < 1_000_000
                ? String(format: "%.0f kB", Double(costs.largestLatestBytes) / 1e3)
                : String(format: "%.1f MB", Double(costs.largestLatestBytes) / 1e6))
            + " | \(ms(costs.appendMeanMilliseconds)) | \(costs.appendsOver25Milliseconds) | "
            + "\(atMost(costs.longestAppendAtMostMilliseconds, costs.snapshots)) | \(ms(costs.heldMeanMilliseconds)) | "
            + "\(atMost(costs.longestHeldAtMostMilliseconds, costs.snapshots)) |"
    }
    lines += [
        "",
        "A snapshot is encoded beside the shard's work, then appended to its journal; what the shard journals meanwhile "
            + "waits behind it. A ready snapshot waits while the shard's next deadline is closer than twice what the last "
            + "append took (50 ms at least), for 5 s at most; \"held\" is from ready to appended, the wait for the next "
            + "batch included.",
    ]
    return lines
}

private func cpuSection(_ report: SystemReport, heading: String) -> [String] {
    let cpu = report.cpu
    let capacity = Double(cpu.cores) * cpu.windowSeconds
    var lines = [
        "",
        "\(heading) "
            + String(format: "CPU (closed-loop phase until its conversations drained: %.1f s on %d cores)",
                cpu.windowSeconds, cpu.cores),
        "",
        String(format: "| process | CPU seconds | cores busy | share of the machine | cores at the target (%.0f conversations/s) |",
            cpu.targetConversationsPerSecond),
        "|---|---|---|---|---|",
    ]
    let total = ProcessCPU(name: "all of these", seconds: cpu.processes.reduce(0) { $0 + $1.seconds })
    let totalAtTarget = cpu.coresAtTarget.reduce(0) { $0 + $1.cores }
    lines += zip(cpu.processes + [total], cpu.coresAtTarget.map(\.cores) + [totalAtTarget]).map { process, atTarget in
        "| \(process.name) | "
            + String(format: "%.1f | %.2f | %.0f%% | %.2f |", process.seconds,
                process.seconds / max(cpu.windowSeconds, 1e-9), 100 * process.seconds / max(capacity, 1e-9), atTarget)
    }
    let withoutLoad = cpu.coresAtTarget.filter { $0.name != CPUProbe.loadGenerator }.reduce(0) { $0 + $1.cores }
    lines.append(
        String(format: "\nAt the throughput target, %@ of the ceiling (%.0f conversations/s), the broker and the services would "
            + "keep %.2f cores busy at the CPU per conversation they spent here, %.2f with the load generator: the machine "
            + "has %d.", percent(SystemReport.throughputTarget), cpu.targetConversationsPerSecond, withoutLoad, totalAtTarget,
            cpu.cores))
    if let system = cpu.brokerMicrosecondsPerMessage {
        var line = String(format: "\nBroker CPU per broker message: %.0f µs here", system)
        if let ceiling = cpu.ceilingBrokerMicrosecondsPerMessage {
            line += String(format: ", %.0f µs in the ceiling run (%.1f×)", ceiling, system / ceiling)
        }
        lines.append(line + ".")
    }
    if let bound = cpu.brokerOnlyConversationsPerSecond {
        lines.append(
            String(format: "At that cost, the broker alone on the machine's %d cores would carry %.0f conversations/s ", cpu.cores, bound)
                + "(\(percent(bound / report.ceilingConversationsPerSecond)) of the ceiling): the most any run on this "
                + "machine can reach, even if the services and the load generator cost nothing.")
    }
    return lines
}

func percent(_ ratio: Double) -> String { String(format: "%.0f%%", ratio * 100) }

func milliseconds(_ value: Double) -> String { String(format: "%.2f ms", value) }
