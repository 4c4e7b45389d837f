import Foundation
import Testing

/// A throwaway RabbitMQ node for one test, run through `scripts/rabbitmq-node.sh` with its own node
/// name, free ports and data folder (as the integration tests' `TestBroker` does); it imports
/// deploy/rabbitmq/definitions.json, so the least-privilege users exist.
final class ThrowawayBroker: Sendable {
    struct ScriptFailure: Error, CustomStringConvertible {
        var status: Int32
        var output: String
        var description: String { "scripts/rabbitmq-node.sh exited with \(status):\n\(output)" }
    }

    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    let amqpPort: Int
    private let environment: [String: String]

    private init() throws {
        let suffix = "gateway-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        let ports = Self.freePorts(count: 4)
        amqpPort = ports[0]
        let root = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_ROOT"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-test-\(UUID().uuidString)").path
        // The node runs as the rabbitmq user, which must reach its folder.
        try FileManager.default.createDirectory(
            atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        var environment = ProcessInfo.processInfo.environment
        environment["SB_NODE_NAME"] = "sbtest-\(suffix)@localhost"
        environment["SB_AMQP_PORT"] = "\(ports[0])"
        environment["SB_DIST_PORT"] = "\(ports[1])"
        environment["SB_MGMT_PORT"] = "\(ports[2])"
        environment["SB_PROMETHEUS_PORT"] = "\(ports[3])"
        environment["SB_NODE_DIR"] = "\(root)/node-\(suffix)"
        environment["SB_PLUGINS"] = "rabbitmq_consistent_hash_exchange"
        self.environment = environment
    }

    /// Runs `body` with a node of its own and stops the node however `body` ends.
    static func with<T: Sendable>(_ body: (ThrowawayBroker) async throws -> T) async throws -> T {
        var attempt = 1
        var broker = try ThrowawayBroker()
        while true {
            do {
                try await broker.run("start")
                break
            } catch let failure as ScriptFailure where attempt < 3 {
                // Most often a port taken between the check and the boot: new ports, new node.
                try? await broker.run("stop")
                print("the test node did not start (attempt \(attempt)): \(failure.output.suffix(300))")
                attempt += 1
                broker = try ThrowawayBroker()
            }
        }
        do {
            let result = try await body(broker)
            try await broker.run("stop")
            return result
        } catch {
            try? await broker.run("stop")
            throw error
        }
    }

    func url(user: String, password: String) -> String {
        "amqp://\(user):\(password)@127.0.0.1:\(amqpPort)/switchboard"
    }

    private func run(_ command: String) async throws {
        let script = Self.repositoryRoot.appendingPathComponent("scripts/rabbitmq-node.sh").path
        // Output goes to a file, not a pipe: the node the script leaves running would hold a pipe open.
        let outputPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("rabbitmq-node-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let status = try await Self.spawnAndWait(
            ["/bin/bash", script, command], environment: environment.map { "\($0.key)=\($0.value)" },
            outputPath: outputPath)
        guard status == 0 else {
            throw ScriptFailure(status: status, output: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
        }
    }

    /// posix_spawn and a blocking waitpid on a thread of its own (Foundation's Process left the script
    /// unreaped in the integration tests).
    private static func spawnAndWait(_ arguments: [String], environment: [String], outputPath: String) async throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, arguments[0], &actions, nil, argv, envp)
        guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EINVAL) }
        let child = pid
        return await withCheckedContinuation { continuation in
            let waiter = Thread {
                var status: Int32 = 0
                while waitpid(child, &status, 0) < 0, errno == EINTR {}
                let exitedNormally = status & 0x7f == 0
                continuation.resume(returning: exitedNormally ? (status >> 8) & 0xff : 128 + (status & 0x7f))
            }
            waiter.start()
        }
    }

    /// Ports below Linux's ephemeral range, each checked free by binding it.
    private static func freePorts(count: Int) -> [Int] {
        var ports: [Int] = []
        while ports.count < count {
            let candidate = Int.random(in: 20_000..<32_000)
            if !ports.contains(candidate), isFree(candidate) { ports.append(candidate) }
        }
        return ports
    }

    private static func isFree(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
