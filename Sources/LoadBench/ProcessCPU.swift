import BenchOptions
import Foundation

/// The CPU time (user and system) a process used in a window of the run, from `/proc/<pid>/stat`.
struct ProcessCPU: Codable {
    var name: String
    var seconds: Double
}

/// The processes whose CPU time the run reads (the broker and the services, by pid, and the load
/// generator itself), and their readings.
struct CPUProbe: Sendable {
    /// Name and `/proc` entry (a pid, or `self`).
    let processes: [(name: String, entry: String)]
    /// The name under which the load generator reads its own CPU time.
    static let loadGenerator = "loadbench"

    /// `name=pid` pairs, comma-separated, and the load generator as `loadbench`.
    init(parsing list: String?) throws(BenchError) {
        var processes: [(name: String, entry: String)] = []
        for pair in (list ?? "").split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, let pid = Int(parts[1]), pid > 0 else {
                throw BenchError("--processes takes name=pid pairs, not \(pair)")
            }
            processes.append((parts[0], String(pid)))
        }
        self.processes = processes + [(Self.loadGenerator, "self")]
    }

    /// Each process's CPU seconds so far.
    func read() throws(BenchError) -> [ProcessCPU] {
        try processes.map { process throws(BenchError) in
            ProcessCPU(name: process.name, seconds: try Self.cpuSeconds(of: process.entry))
        }
    }

    /// What each process used between `before` and `after`, both from `read()`.
    static func used(from before: [ProcessCPU], to after: [ProcessCPU]) -> [ProcessCPU] {
        zip(before, after).map { ProcessCPU(name: $1.name, seconds: $1.seconds - $0.seconds) }
    }

    /// utime + stime, fields 14 and 15 of `/proc/<entry>/stat`, counted after the command name, which is in
    /// parentheses and may hold spaces.
    private static func cpuSeconds(of entry: String) throws(BenchError) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { throw BenchError("cannot read /proc/\(entry)/stat") }
        // After ") " come field 3 (state) onwards, so utime and stime are at offsets 11 and 12.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else {
            throw BenchError("cannot parse /proc/\(entry)/stat")
        }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
