import BenchOptions
import Foundation

/// The services' own counts of what they moved, summed over shards, and their timer-lateness histograms, read
/// from their `/metrics`.
struct ServiceCounters: Sendable {
    var effectsPublished: Double = 0
    var journalAppends: Double = 0
    var inputsConsumed: Double = 0
    /// `switchboard_timer_lateness_seconds` by service: cumulative count by bucket bound in seconds.
    var timerLateness: [String: [Double: Double]] = [:]

    static func - (lhs: Self, rhs: Self) -> Self {
        ServiceCounters(
            effectsPublished: lhs.effectsPublished - rhs.effectsPublished,
            journalAppends: lhs.journalAppends - rhs.journalAppends,
            inputsConsumed: lhs.inputsConsumed - rhs.inputsConsumed,
            timerLateness: lhs.timerLateness.merging(rhs.timerLateness.mapValues { $0.mapValues { -$0 } }) { now, then in
                now.merging(then, uniquingKeysWith: +)
            })
    }

    /// Scrapes every endpoint with curl (Foundation's HTTP client is not in every Linux toolchain).
    static func scrape(_ endpoints: [String]) throws -> ServiceCounters {
        var total = ServiceCounters()
        for endpoint in endpoints {
            let text = try fetch("http://\(endpoint)/metrics")
            total.effectsPublished += sum("switchboard_effects_published_total", in: text)
            total.journalAppends += sum("switchboard_journal_appends_total", in: text)
            total.inputsConsumed += sum("switchboard_inputs_total", in: text)
            for line in text.split(separator: "\n") where line.hasPrefix("switchboard_timer_lateness_seconds_bucket{") {
                guard let service = label("service", in: line), let bound = label("le", in: line).flatMap(Double.init),
                    let count = line.split(separator: " ").last.flatMap({ Double($0) })
                else { continue }
                total.timerLateness[service, default: [:]][bound, default: 0] += count
            }
        }
        return total
    }

    /// Each service's timer lateness, from its histogram, in the order the services come in the pipeline.
    var timerLatenessSummaries: [TimerLateness] {
        let order = ["router", "notifier", "closer"]
        func rank(_ service: String) -> (Int, String) { (order.firstIndex(of: service) ?? order.count, service) }
        return timerLateness.keys.sorted { rank($0) < rank($1) }.map { service in
            TimerLateness(service: service, cumulativeCounts: timerLateness[service] ?? [:])
        }
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
        let bounds = cumulativeCounts.keys.sorted()
        let total = bounds.last.flatMap { cumulativeCounts[$0] } ?? 0
        func atMost(_ quantile: Double) -> Double? {
            guard total > 0 else { return nil }
            let rank = (quantile * total).rounded(.up)
            return bounds.first { (cumulativeCounts[$0] ?? 0) >= rank }.flatMap { $0.isFinite ? $0 * 1_000 : nil }
        }
        self.service = service
        ticks = Int(total)
        p50AtMostMilliseconds = atMost(0.5)
        p99AtMostMilliseconds = atMost(0.99)
    }
}
