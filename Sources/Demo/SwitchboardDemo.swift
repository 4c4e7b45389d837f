import ArgumentParser
import Dispatch
import Foundation
import SwitchboardAMQP
import SwitchboardCommon
import SwitchboardOps

@main
struct SwitchboardDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboard-demo",
        abstract: "Plays users and agents against the running services, through the public exchanges only.",
        discussion: """
            Desk `demo` rings its agents; desk `auto` serves at once (automatic service). Simulated agents \
            accept, let rings expire or click too late; users reply or go quiet until the inactivity close. \
            Ctrl-C (or SIGTERM, SIGHUP) ends the open conversations, prints a summary and exits. Desks demo and \
            auto are the demo's own: a conversation there that an earlier run left open is ended.
            """)

    @Option(
        name: .customLong("amqp-url"),
        help: "Broker URL (default: $\(OpsConnection.environmentKey), else the local node of `make up`).")
    var amqpURL: String?
    @Option(help: "How long a ring lasts on desk demo, in ms.") var ringMs: Int64 = 6_000
    @Option(help: "User silence after an agent's message before the close, in ms.") var inactivityMs: Int64 = 8_000
    @Option(help: "Warning to the user this long before the close, in ms (0: none).") var warningMs: Int64 = 3_000
    @Option(help: "A new conversation every this many ms.") var everyMs: Int = 3_000
    @Option(help: "Seed of the simulated people's choices (default: random).") var seed: UInt64?

    func validate() throws {
        guard everyMs >= 200 else { throw ValidationError("--every-ms must be at least 200") }
        guard ringMs > 0 else { throw ValidationError("--ring-ms must be more than 0") }
        guard inactivityMs >= 0, warningMs >= 0 else { throw ValidationError("--inactivity-ms and --warning-ms must be 0 or more") }
        // The Router refuses such a desk.configure (dead-lettered), and the demo would wait for a set-up that never comes.
        guard inactivityMs == 0 || warningMs < inactivityMs else {
            throw ValidationError("--warning-ms must be less than --inactivity-ms (or 0 for no warning)")
        }
    }

    func run() async throws {
        let terminal = Terminal.detect()
        let seed = seed ?? UInt64.random(in: 0...UInt64.max)
        let url = OpsConnection.resolveURL(flag: amqpURL)
        let connection: AMQPConnection
        do {
            connection = try await OpsConnection.connect(url: url, name: "switchboard-demo")
        } catch {
            FileHandle.standardError.write(Data("switchboard-demo: \(error)\nIs the node up? Try: make up\n".utf8))
            throw ExitCode(69)
        }
        let settings = DemoSettings(ringMs: ringMs, inactivityMs: inactivityMs, warningMs: warningMs, everyMs: everyMs)
        let demo = DemoRun(connection: connection, terminal: terminal, settings: settings, seed: seed)
        terminal.line(.dim, "switchboard-demo (seed \(seed)); Ctrl-C to stop")

        let main = Task { try await demo.play() }
        // Ctrl-C, and a stop by a supervisor or a closed terminal, all end the run the same way. A reader of the
        // output that went away (a pipe closed by the same Ctrl-C) must not kill the demo before it has ended its
        // conversations.
        signal(SIGPIPE, SIG_IGN)
        let stops = [SIGINT, SIGTERM, SIGHUP].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            signal(number, SIG_IGN)
            source.setEventHandler { main.cancel() }
            source.resume()
            return source
        }
        let outcome = await main.result
        stops.forEach { $0.cancel() }
        // However the run ended, a stop while the conversations are ended (which waits on a broker gone away)
        // quits at once.
        for number in [SIGINT, SIGTERM, SIGHUP] { signal(number, SIG_DFL) }
        terminal.line(.dim, "stopping: ending the open conversations (Ctrl-C again to quit at once)")

        await demo.finish()
        await connection.close()
        if case .failure(let error) = outcome, !(error is CancellationError) {
            FileHandle.standardError.write(Data("switchboard-demo: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct DemoSettings: Sendable {
    var ringMs: Milliseconds
    var inactivityMs: Milliseconds
    var warningMs: Milliseconds
    var everyMs: Int
}
