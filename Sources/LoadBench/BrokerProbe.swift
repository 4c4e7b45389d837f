import BenchOptions
import Foundation

/// The broker operations of request→ring with none of our code in them, measured beside a paced phase:
/// bench/c-baseline.c with `--stages 2` sends one persistent message at a time, at a low rate, through two
/// stages that each do what a shard's writer does with it (take it from a quorum queue, append it to a stream
/// and wait for the confirm, read it back, publish it onward), the second one to a classic queue, as the
/// Router and the Notifier do with a request. It times the first quorum-queue hop and the whole chain. Under
/// the same load, request→ring's p99 is no lower than the chain's: that is the floor of this design on this
/// broker.
struct BrokerProbe: Sendable {
    /// Messages per second. Each is published five times on its way (first, to each journal, onward twice), so
    /// at 10/s the probe adds about 3% to the 25% phase's broker messages (a fifth to the trickle's): 200 samples
    /// in a 20 s phase.
    static let rate = 10
    /// The Router and the Notifier.
    static let stages = 2
    /// Its queues' prefix (see bench/c-baseline.c).
    static let queue = "bench.system.chain"

    /// The c-baseline executable.
    let executable: String
    let url: String

    /// Starts the probe for about `seconds`; `Running.result()` waits for it to end.
    func start(seconds: Int, bodyBytes: Int) throws(BenchError) -> Running {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "--url", url, "--queue", Self.queue, "--stages", String(Self.stages), "--window", "1",
            "--rate", String(Self.rate), "--messages", String(Self.rate * seconds), "--body-bytes", String(max(bodyBytes, 8)),
        ]
        let output = Pipe()
        process.standardOutput = output
        let (exits, exit) = AsyncStream.makeStream(of: Int32.self)
        process.terminationHandler = { ended in
            exit.yield(ended.terminationStatus)
            exit.finish()
        }
        do { try process.run() } catch { throw BenchError("cannot start the broker probe \(executable): \(error)") }
        return Running(exits: exits, output: output.fileHandleForReading)
    }

    struct Running: Sendable {
        let exits: AsyncStream<Int32>
        let output: FileHandle

        func result() async throws -> BrokerFloor {
            var status: Int32?
            for await ended in exits { status = ended }
            // The one line it prints fits in the pipe's buffer, so reading after it ended cannot block.
            let printed = output.readDataToEndOfFile()
            guard status == 0 else { throw BenchError("the broker probe failed (exit status \(status.map(String.init) ?? "unknown"))") }
            return try JSONDecoder().decode(BrokerFloor.self, from: printed)
        }
    }
}

/// What the broker probe measured beside one phase, as bench/c-baseline.c prints it.
struct BrokerFloor: Codable {
    /// One quorum-queue hop: publish → delivery to the first stage.
    var hop: LatencySummary
    /// The whole chain: publish → delivery from the last stage's classic queue.
    var chain: LatencySummary
}
