import BenchOptions
import Foundation

/// The services' own counts of what they moved, summed over shards, their timer-lateness histograms, where
/// their batches' time went and what their snapshots cost, read from their `/metrics`.
struct ServiceCounters: Sendable {
    var effectsPublished: Double = 0
    var journalAppends: Double = 0
    var inputsConsumed: Double = 0
    /// `switchboard_timer_lateness_seconds` by service: cumulative count by bucket bound in seconds.
    var timerLateness: [String: [Double: Double]] = [:]
    /// By service.
    var snapshots: [String: SnapshotCounters] = [:]
    /// By service.
    var batches: [String: BatchCounters] = [:]

    static func - (lhs: Self, rhs: Self) -> Self {
        ServiceCounters(
            effectsPublished: lhs.effectsPublished - rhs.effectsPublished,
            journalAppends: lhs.journalAppends - rhs.journalAppends,
            inputsConsumed: lhs.inputsConsumed - rhs.inputsConsumed,
            timerLateness: lhs.timerLateness.merging(rhs.timerLateness.mapValues { $0.mapValues { -$0 } }) { now, then in
                now.merging(then, uniquingKeysWith: +)
            },
            snapshots: lhs.snapshots.merging(rhs.snapshots) { now, then in now - then },
            batches: lhs.batches.merging(rhs.batches) { now, then in now - then })
    }

    /// Scrapes every endpoint with curl (Foundation's HTTP client is not in every Linux toolchain).
    static func scrape(_ endpoints: [String]) throws -> ServiceCounters {
        var total = ServiceCounters()
        for endpoint in endpoints {
            total.add(try fetch("http://\(endpoint)/metrics"))
        }
        return total
    }

    /// Adds one service's `/metrics` text.
    mutating func add(_ text: String) {
        effectsPublished += Self.sum("switchboard_effects_published_total", in: text)
        journalAppends += Self.sum("switchboard_journal_appends_total", in: text)
        inputsConsumed += Self.sum("switchboard_inputs_total", in: text)
        for line in text.split(separator: "\n") {
            guard let service = Self.label("service", in: line),
                let value = line.split(separator: " ").last.flatMap({ Double($0) })
            else { continue }
            let bound = Self.label("le", in: line).flatMap(Double.init)
            if line.hasPrefix("switchboard_timer_lateness_seconds_bucket{"), let bound {
                timerLateness[service, default: [:]][bound, default: 0] += value
            } else if line.hasPrefix("switchboard_snapshots_total{") {
                snapshots[service, default: SnapshotCounters()].snapshots += value
            } else if line.hasPrefix("switchboard_snapshot_bytes{") {
                snapshots[service, default: SnapshotCounters()].largestLatestBytes = max(
                    snapshots[service]?.largestLatestBytes ?? 0, value)
            } else if line.hasPrefix("switchboard_batch_size_") {
                batches[service, default: BatchCounters()].size.add(line, value: value, bound: bound)
            } else if line.hasPrefix("switchboard_batch_processing_seconds_") {
                batches[service, default: BatchCounters()].whole.add(line, value: value, bound: bound)
            } else if line.hasPrefix("switchboard_stage_seconds_"), let stage = Self.label("stage", in: line) {
                switch stage {
                case "snapshot_append":
                    snapshots[service, default: SnapshotCounters()].append.add(line, value: value, bound: bound)
                case "snapshot_held":
                    snapshots[service, default: SnapshotCounters()].held.add(line, value: value, bound: bound)
                default:
                    guard let histogram = BatchCounters.stage(stage) else { continue }
                    batches[service, default: BatchCounters()][keyPath: histogram].add(line, value: value, bound: bound)
                }
            }
        }
    }

    /// Each service's batches, in the order the services come in the pipeline.
    var batchSummaries: [BatchCosts] { Self.inPipelineOrder(batches, BatchCosts.init) }

    /// Each service's snapshots, in the order the services come in the pipeline.
    var snapshotSummaries: [SnapshotCosts] { Self.inPipelineOrder(snapshots, SnapshotCosts.init) }

    /// Each service's timer lateness, from its histogram, in the order the services come in the pipeline.
    var timerLatenessSummaries: [TimerLateness] { Self.inPipelineOrder(timerLateness, TimerLateness.init) }

    /// One summary per service, the Router's first, then the Notifier's and the Closer's.
    private static func inPipelineOrder<Counters, Summary>(
        _ byService: [String: Counters], _ summary: (String, Counters) -> Summary
    ) -> [Summary] {
        let order = ["router", "notifier", "closer"]
        func rank(_ service: String) -> (Int, String) { (order.firstIndex(of: service) ?? order.count, service) }
        return byService.sorted { rank($0.key) < rank($1.key) }.map { summary($0.key, $0.value) }
    }

    /// The sum of every sample of `name` in Prometheus text format, whatever its labels.
    static func sum(_ name: String, in text: String) -> Double {
        text.split(separator: "\n").reduce(0) { total, line in
            guard line.hasPrefix(name), let next = line.dropFirst(name.count).first, next == "{" || next == " ",
                let value = line.split(separator: " ").last.flatMap({ Double($0) })
            else { return total }
            return total + value
        }
    }

    /// The value of label `name` in a sample line (`name{a="x",le="0.5"} 3`).
    private static func label(_ name: String, in line: Substring) -> String? {
        guard let start = line.range(of: "\(name)=\"") else { return nil }
        let rest = line[start.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    private static func fetch(_ url: String) throws -> String {
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-fsS", "--max-time", "5", url]
        let output = Pipe()
        curl.standardOutput = output
        try curl.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        curl.waitUntilExit()
        guard curl.terminationStatus == 0 else { throw BenchError("cannot read \(url)") }
        return String(decoding: data, as: UTF8.self)
    }
}

/// How late one service's timers fired, as its histogram tells: from a deadline to the start of the batch that
/// journals the tick. A histogram gives bucket bounds, not exact values: each percentile is at most its bound
/// (`nil` when no tick fired, or when it lies past the largest finite bucket).
struct TimerLateness: Codable, Sendable {
    var service: String
    var ticks: Int
    var p50AtMostMilliseconds: Double?
    var p99AtMostMilliseconds: Double?

    init(service: String, cumulativeCounts: [Double: Double]) {
        // The largest bound (+Inf) counts every tick.
        let total = cumulativeCounts.keys.max().flatMap { cumulativeCounts[$0] } ?? 0
        let histogram = BucketCounts(count: total, cumulative: cumulativeCounts)
        self.service = service
        ticks = Int(total)
        p50AtMostMilliseconds = histogram.atMostMilliseconds(0.5)
        p99AtMostMilliseconds = histogram.atMostMilliseconds(0.99)
    }
}

/// One service's snapshot metrics, summed over its shards.
struct SnapshotCounters: Sendable {
    var snapshots: Double = 0
    /// The largest of the shards' latest snapshot sizes (a gauge: not subtracted).
    var largestLatestBytes: Double = 0
    /// `switchboard_stage_seconds{stage="snapshot_append"}`: how long each append held the journal.
    var append = BucketCounts()
    /// `stage="snapshot_held"`: how long each ready snapshot waited for room before a deadline.
    var held = BucketCounts()

    static func - (lhs: Self, rhs: Self) -> Self {
        SnapshotCounters(
            snapshots: lhs.snapshots - rhs.snapshots, largestLatestBytes: lhs.largestLatestBytes,
            append: lhs.append - rhs.append, held: lhs.held - rhs.held)
    }
}

/// A Prometheus histogram's samples, summed over shards: sum and count, and cumulative counts by bound in seconds.
struct BucketCounts: Sendable {
    var sum: Double = 0
    var count: Double = 0
    var cumulative: [Double: Double] = [:]

    mutating func add(_ line: Substring, value: Double, bound: Double?) {
        if line.contains("_sum{") {
            sum += value
        } else if line.contains("_count{") {
            count += value
        } else if let bound {
            cumulative[bound, default: 0] += value
        }
    }

    static func - (lhs: Self, rhs: Self) -> Self {
        BucketCounts(
            sum: lhs.sum - rhs.sum, count: lhs.count - rhs.count,
            cumulative: lhs.cumulative.merging(rhs.cumulative.mapValues { -$0 }, uniquingKeysWith: +))
    }

    var meanMilliseconds: Double? { count > 0 ? 1_000 * sum / count : nil }

    /// How many samples lay above `seconds` (a bucket bound).
    func above(_ seconds: Double) -> Int { Int(count - (cumulative[seconds] ?? count)) }

    /// The smallest bound that holds the `quantile` of the samples, in milliseconds; `nil` with no samples or past
    /// the largest finite bound.
    func atMostMilliseconds(_ quantile: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = (quantile * count).rounded(.up)
        return cumulative.keys.sorted().first { (cumulative[$0] ?? 0) >= rank }.flatMap { $0.isFinite ? $0 * 1_000 : nil }
    }
}

/// What one service's snapshots cost over a stretch of the run.
struct SnapshotCosts: Codable, Sendable {
    var service: String
    var snapshots: Int
    var largestLatestBytes: Int
    var appendMeanMilliseconds: Double?
    var appendsOver25Milliseconds: Int
    var longestAppendAtMostMilliseconds: Double?
    var heldMeanMilliseconds: Double?
    var longestHeldAtMostMilliseconds: Double?

    init(service: String, _ counters: SnapshotCounters) {
        self.service = service
        snapshots = Int(counters.snapshots)
        largestLatestBytes = Int(counters.largestLatestBytes)
        appendMeanMilliseconds = counters.append.meanMilliseconds
        appendsOver25Milliseconds = counters.append.above(0.025)
        longestAppendAtMostMilliseconds = counters.append.atMostMilliseconds(1)
        heldMeanMilliseconds = counters.held.meanMilliseconds
        longestHeldAtMostMilliseconds = counters.held.atMostMilliseconds(1)
    }
}

/// One service's batch metrics, summed over its shards: `switchboard_batch_size`, `switchboard_batch_processing_seconds`
/// and the stages of `switchboard_stage_seconds` a batch goes through.
struct BatchCounters: Sendable {
    var size = BucketCounts()
    var whole = BucketCounts()
    var inboxWait = BucketCounts()
    var journalConfirm = BucketCounts()
    var apply = BucketCounts()
    var effectsConfirm = BucketCounts()

    /// Where the samples of `switchboard_stage_seconds{stage=name}` go; `nil` for a stage that is not a batch's.
    static func stage(_ name: String) -> WritableKeyPath<BatchCounters, BucketCounts>? {
        switch name {
        case "inbox_wait": \.inboxWait
        case "journal_confirm": \.journalConfirm
        case "apply": \.apply
        case "effects_confirm": \.effectsConfirm
        default: nil
        }
    }

    static func - (lhs: Self, rhs: Self) -> Self {
        BatchCounters(
            size: lhs.size - rhs.size, whole: lhs.whole - rhs.whole, inboxWait: lhs.inboxWait - rhs.inboxWait,
            journalConfirm: lhs.journalConfirm - rhs.journalConfirm, apply: lhs.apply - rhs.apply,
            effectsConfirm: lhs.effectsConfirm - rhs.effectsConfirm)
    }
}

/// Where one service's batches spent their time over a stretch of the run, as means.
struct BatchCosts: Codable, Sendable {
    var service: String
    var batches: Int
    var meanSize: Double?
    /// From the oldest delivery's arrival to the start of its batch.
    var inboxWaitMeanMilliseconds: Double?
    /// From appending the batch's entries to the journal to their confirms.
    var journalConfirmMeanMilliseconds: Double?
    /// From those confirms to the entries applied as read back.
    var applyMeanMilliseconds: Double?
    /// From publishing the batch's effects to their confirms (while the next batch is journaled).
    var effectsConfirmMeanMilliseconds: Double?
    /// From the batch's start to its effects published: the last batch's effects confirmed first.
    var wholeMeanMilliseconds: Double?

    init(service: String, _ counters: BatchCounters) {
        self.service = service
        batches = Int(counters.whole.count)
        meanSize = counters.size.count > 0 ? counters.size.sum / counters.size.count : nil
        inboxWaitMeanMilliseconds = counters.inboxWait.meanMilliseconds
        journalConfirmMeanMilliseconds = counters.journalConfirm.meanMilliseconds
        applyMeanMilliseconds = counters.apply.meanMilliseconds
        effectsConfirmMeanMilliseconds = counters.effectsConfirm.meanMilliseconds
        wholeMeanMilliseconds = counters.whole.meanMilliseconds
    }
}
