import BenchOptions
import Foundation

/// One broker hop with none of our code in it, measured beside a paced phase: bench/c-baseline.c
/// publishes one persistent message at a time to a quorum queue, at a low rate, and times each from its
/// publish to its delivery. request→ring crosses several hops like it in a row (the request into the
/// Router's shard queue, the Router's event into the Notifier's), so under the same load its p99 is no
/// lower than one hop's.
struct HopProbe: Sendable {
    /// Messages per second: few enough to add a few percent to the 25% phase's broker traffic.
    static let rate = 50
    static let queue = "bench.system.hop-probe"

    /// The c-baseline executable.
    let executable: String
    let url: String

    /// Starts the probe for about `seconds`; `Running.result()` waits for it to end.
    func start(seconds: Int, bodyBytes: Int) throws(BenchError) -> Running {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "--url", url, "--queue", Self.queue, "--queue-type", "quorum", "--window", "1",
            "--rate", String(Self.rate), "--messages", String(Self.rate * seconds), "--body-bytes", String(max(bodyBytes, 8)),
        ]
        let output = Pipe()
        process.standardOutput = output
        let (exits, exit) = AsyncStream.makeStream(of: Int32.self)
        process.terminationHandler = { ended in
            exit.yield(ended.terminationStatus)
            exit.finish()
        }
        do { try process.run() } catch { throw BenchError("cannot start the hop probe \(executable): \(error)") }
        return Running(exits: exits, output: output.fileHandleForReading)
    }

    struct Running: Sendable {
        let exits: AsyncStream<Int32>
        let output: FileHandle

        func result() async throws -> HopLatency {
            var status: Int32?
            for await ended in exits { status = ended }
            // The one line it prints fits in the pipe's buffer, so reading after it ended cannot block.
            let printed = output.readDataToEndOfFile()
            guard status == 0 else { throw BenchError("the hop probe failed (exit status \(status.map(String.init) ?? "unknown"))") }
            let record = try JSONDecoder().decode(BaselineRecord.self, from: printed)
            return HopLatency(
                messages: record.messages, p50Milliseconds: record.latencyP50Microseconds / 1e3,
                p99Milliseconds: record.latencyP99Microseconds / 1e3, maxMilliseconds: record.latencyMaxMicroseconds / 1e3)
        }
    }
}

/// What the hop probe measured beside one phase.
struct HopLatency: Codable {
    var messages: Int
    var p50Milliseconds: Double
    var p99Milliseconds: Double
    var maxMilliseconds: Double
}
