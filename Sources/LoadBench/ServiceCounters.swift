import BenchOptions
import Foundation

/// The services' own counts of what they moved, summed over shards, read from their `/metrics`.
struct ServiceCounters: Sendable {
    var effectsPublished: Double = 0
    var journalAppends: Double = 0
    var inputsConsumed: Double = 0

    static func - (lhs: Self, rhs: Self) -> Self {
        ServiceCounters(
            effectsPublished: lhs.effectsPublished - rhs.effectsPublished,
            journalAppends: lhs.journalAppends - rhs.journalAppends,
            inputsConsumed: lhs.inputsConsumed - rhs.inputsConsumed)
    }

    /// Scrapes every endpoint with curl (Foundation's HTTP client is not in every Linux toolchain).
    static func scrape(_ endpoints: [String]) throws -> ServiceCounters {
        var total = ServiceCounters()
        for endpoint in endpoints {
            let text = try fetch("http://\(endpoint)/metrics")
            total.effectsPublished += sum("switchboard_effects_published_total", in: text)
            total.journalAppends += sum("switchboard_journal_appends_total", in: text)
            total.inputsConsumed += sum("switchboard_inputs_total", in: text)
        }
        return total
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
