import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
import SwitchboardAMQP
import Testing

/// A throwaway RabbitMQ node for integration tests, run through `scripts/rabbitmq-node.sh` with its
/// own node name, free ports and data folder: under `$SWITCHBOARD_TEST_ROOT` (set by scripts/test.sh),
/// or in the temporary folder when the tests run by hand. The folder is removed once the node has stopped
/// for the last time, unless the test or suite that owned it ended with an error: then it stays, with the
/// node's logs, and its path is printed. (A failed expectation is no error; its node's folder goes too.)
///
/// Non-disruptive tests share one node through the `.sharedBroker` suite trait; tests that stop the
/// node or raise alarms take their own with `TestBroker.withDedicatedNode`.
public final class TestBroker: Sendable {
    public struct ScriptFailure: Error, CustomStringConvertible {
        var command: String
        var status: Int32
        var output: String
        public var description: String { "scripts/rabbitmq-node.sh \(command) exited with \(status):\n\(output)" }
    }

    /// This file is Tests/SwitchboardTestSupport/TestBroker.swift.
    public static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public let nodeName: String
    public let amqpPort: Int
    /// The TLS listener's port, for a node started `withTLS`.
    public let amqpsPort: Int?
    private let nodeDirectory: String
    private let environment: [String: String]

    private init(label: String, withTLS: Bool, maxMessageBytes: Int?) throws {
        let suffix = "\(label)-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        nodeName = "sbtest-\(suffix)@localhost"
        let ports = try Self.freePorts(count: 5)
        amqpPort = ports[0]
        amqpsPort = withTLS ? ports[4] : nil
        nodeDirectory = Self.nodeDirectory(suffix: suffix)
        var environment = ProcessInfo.processInfo.environment
        environment["SB_NODE_NAME"] = nodeName
        environment["SB_AMQP_PORT"] = "\(ports[0])"
        environment["SB_DIST_PORT"] = "\(ports[1])"
        environment["SB_MGMT_PORT"] = "\(ports[2])"
        environment["SB_PROMETHEUS_PORT"] = "\(ports[3])"
        environment["SB_NODE_DIR"] = nodeDirectory
        environment["SB_AMQPS_PORT"] = amqpsPort.map { "\($0)" }
        // Only what the tests use: a smaller node boots faster on a loaded machine.
        environment["SB_PLUGINS"] = "rabbitmq_consistent_hash_exchange"
        environment["SB_MAX_MESSAGE_BYTES"] = maxMessageBytes.map { "\($0)" }
        self.environment = environment
    }

    /// Starts a node; `label` goes into its name, to tell nodes apart in `ps` and in logs. `withTLS` adds
    /// a TLS listener (`amqpsPort`) with certificates of the node's own (`tlsFile`). `maxMessageBytes` sets the
    /// broker's `max_message_size` (scripts/rabbitmq-node.sh's default otherwise).
    public static func start(label: String, withTLS: Bool = false, maxMessageBytes: Int? = nil) async throws -> TestBroker {
        var attempt = 1
        while true {
            let broker = try TestBroker(label: label, withTLS: withTLS, maxMessageBytes: maxMessageBytes)
            do {
                try await broker.start()
                return broker
            } catch let failure as ScriptFailure where attempt < 3 {
                // Most often a port taken between the check and the boot; new ports, new node.
                try? await broker.wipe()
                print("node \(broker.nodeName) did not start (attempt \(attempt)), trying again: \(failure.output.suffix(300))")
                attempt += 1
            }
        }
    }

    /// Runs `body` with a node of its own, and stops the node however `body` ends: wiped when `body`
    /// returns, left with its data and logs when it throws.
    public static func withDedicatedNode<T: Sendable>(
        label: String, withTLS: Bool = false, maxMessageBytes: Int? = nil, _ body: (TestBroker) async throws -> T
    ) async throws -> T {
        let broker = try await start(label: label, withTLS: withTLS, maxMessageBytes: maxMessageBytes)
        do {
            let result = try await body(broker)
            try await broker.wipe()
            return result
        } catch {
            try? await broker.stop()
            broker.keepForInspection()
            throw error
        }
    }

    /// The URL of the `switchboard` vhost with the `switchboard` user from deploy/rabbitmq/definitions.json.
    public func url(user: String = "switchboard", password: String = "switchboard", vhost: String = "switchboard") -> String {
        "amqp://\(user):\(password)@127.0.0.1:\(amqpPort)/\(vhost)"
    }

    /// A file the node script made for the TLS listener: `ca.pem`, `client.pem`, `client-key.pem`.
    public func tlsFile(_ name: String) -> String {
        "\(nodeDirectory)/tls/\(name)"
    }

    /// A configuration for this node with short waits, so a failing test fails quickly.
    public func configuration(user: String = "switchboard", password: String = "switchboard", vhost: String = "switchboard") throws -> AMQPConfiguration {
        var configuration = try AMQPConfiguration(url: url(user: user, password: password, vhost: vhost))
        configuration.heartbeatSeconds = 5
        configuration.reconnectBackoff = ReconnectBackoff(initialDelay: .milliseconds(100), maximumDelay: .seconds(1))
        return configuration
    }

    public func connect(
        name: String = "test", user: String = "switchboard", password: String = "switchboard"
    ) async throws -> AMQPConnection {
        var configuration = try configuration(user: user, password: password)
        configuration.connectionName = name
        return try await AMQPConnection.connect(configuration, logger: Logger(label: "switchboard.test.\(name)"))
    }

    /// Kills the node's Erlang VM with SIGKILL, as a crash would: connections drop without a goodbye and
    /// the broker confirms nothing more. `start()` boots it again from its data folder.
    public func kill() async throws {
        let pidFile = "\(nodeDirectory)/rabbitmq.pid"
        let text = try String(contentsOfFile: pidFile, encoding: .utf8)
        guard let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ScriptFailure(command: "kill", status: -1, output: "no pid in \(pidFile): \(text)")
        }
        guard Glibc.kill(pid, SIGKILL) == 0 else {
            throw ScriptFailure(command: "kill", status: errno, output: "kill -9 \(pid) failed")
        }
        // Gone, or a zombie that no one has reaped yet (the VM's parent is whatever adopted it).
        try await waitUntil("the node's VM has exited") {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            return Glibc.kill(pid, 0) != 0 || stat.contains(") Z ")
        }
    }

    public func start() async throws { _ = try await runScript(["start"]) }
    public func stop() async throws { _ = try await runScript(["stop"]) }
    /// Stops the node and removes its data folder, for good: after `stop()` alone, `start()` boots it again
    /// from its data.
    func wipe() async throws { _ = try await runScript(["wipe"]) }
    /// What `start` does once the node has booted: puts the hash rings in order and lets publishers in. A node
    /// whose application was restarted with `ctl("start_app")` blocks publishers until then.
    public func open() async throws { _ = try await runScript(["open"]) }

    /// Leaves the data folder of a node whose test ended with an error, and says where it is.
    func keepForInspection() {
        print("node \(nodeName) left its data and logs in \(nodeDirectory)")
    }

    /// Runs rabbitmqctl against this node and returns what it printed.
    @discardableResult
    public func ctl(_ arguments: String...) async throws -> String {
        try await runScript(["ctl"] + arguments)
    }

    private func runScript(_ arguments: [String]) async throws -> String {
        let script = Self.repositoryRoot.appendingPathComponent("scripts/rabbitmq-node.sh").path
        // Output goes to a file, not a pipe: the node the script leaves running would hold a pipe
        // open forever.
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("rabbitmq-node-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let status = try await Self.spawnAndWait(
            ["/bin/bash", script] + arguments,
            environment: environment.map { "\($0.key)=\($0.value)" }, outputPath: outputPath)
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw ScriptFailure(command: arguments.joined(separator: " "), status: status, output: text)
        }
        return text
    }

    /// posix_spawn and a blocking waitpid on a thread of its own. (Foundation's Process left the
    /// script unreaped here, so its termination handler never ran.) librabbitmq's sockets and the
    /// connection's eventfd are close-on-exec, so the node never holds a test's connections.
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
                // WIFEXITED / WEXITSTATUS are macros Swift does not import.
                let exitedNormally = status & 0x7f == 0
                continuation.resume(returning: exitedNormally ? (status >> 8) & 0xff : 128 + (status & 0x7f))
            }
            waiter.start()
        }
    }

    /// Under `$SWITCHBOARD_TEST_ROOT`, or a folder of its own in the temporary folder, which the node
    /// (run as the rabbitmq user) can reach.
    private static func nodeDirectory(suffix: String) -> String {
        if let root = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_ROOT"], !root.isEmpty {
            return URL(fileURLWithPath: root).appendingPathComponent("node-\(suffix)").path
        }
        return FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-test-node-\(suffix)").path
    }

    /// Ports below Linux's ephemeral range (32768 and up), so the many client connections of a
    /// test run cannot take them between this check and the node's start. Each is checked free by
    /// binding it, and never handed out twice in one test process: a node that a test killed and
    /// starts again on its own ports must find them free, though they were while it was down. A clash
    /// with another process starting a node at the same moment is retried by `start`.
    private static func freePorts(count: Int) throws -> [Int] {
        handedOut.withLock { handedOut in
            var ports: [Int] = []
            while ports.count < count {
                let candidate = Int.random(in: 20_000..<32_000)
                if !handedOut.contains(candidate), isFree(candidate) {
                    ports.append(candidate)
                    handedOut.insert(candidate)
                }
            }
            return ports
        }
    }

    private static let handedOut = Mutex<Set<Int>>([])

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

/// Gives a suite one node for all its tests: started before the first, stopped after the last.
public struct SharedBrokerTrait: SuiteTrait, TestScoping {
    @TaskLocal static var current: TestBroker?
    let withTLS: Bool

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: () async throws -> Void) async throws {
        let broker = try await TestBroker.start(label: withTLS ? "shared-tls" : "shared", withTLS: withTLS)
        do {
            try await Self.$current.withValue(broker) { try await function() }
            try await broker.wipe()
        } catch {
            try? await broker.stop()
            broker.keepForInspection()
            throw error
        }
    }
}

extension Trait where Self == SharedBrokerTrait {
    /// One node shared by every test of the suite.
    public static var sharedBroker: SharedBrokerTrait { SharedBrokerTrait(withTLS: false) }

    /// One node with a TLS listener shared by every test of the suite.
    public static var sharedTLSBroker: SharedBrokerTrait { SharedBrokerTrait(withTLS: true) }
}

extension TestBroker {
    /// The node of the enclosing `.sharedBroker` suite.
    public static var shared: TestBroker {
        get throws {
            guard let broker = SharedBrokerTrait.current else {
                throw ScriptFailure(command: "(none)", status: -1, output: "this test's suite has no .sharedBroker trait")
            }
            return broker
        }
    }
}

/// Waits until `condition` holds, polling, and fails the test if it does not within `timeout`.
public func waitUntil(
    _ description: String, timeout: Duration = .seconds(30),
    sourceLocation: SourceLocation = #_sourceLocation, _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out after \(timeout) waiting until \(description)", sourceLocation: sourceLocation)
    throw CancellationError()
}

/// What `body` returns, or nil when `timeout` passes first (`body` is cancelled then): a wait that a broken
/// feature would otherwise leave hanging until the whole run's limit.
public func within<Value: Sendable>(
    _ timeout: Duration, _ body: @escaping @Sendable () async throws -> Value?
) async throws -> Value? {
    try await withThrowingTaskGroup(of: Value?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        return try await group.next() ?? nil
    }
}

/// The first element of `sequence`, failing the test if none comes within `timeout` (or the sequence ends
/// first).
public func firstElement<Sequence: AsyncSequence & Sendable>(
    of sequence: Sequence, _ description: String, timeout: Duration = .seconds(30),
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> Sequence.Element where Sequence.Element: Sendable {
    let first = try await within(timeout) {
        for try await element in sequence { return element }
        return nil
    }
    guard let first else {
        Issue.record("nothing came within \(timeout): \(description)", sourceLocation: sourceLocation)
        throw CancellationError()
    }
    return first
}

/// A queue name no other test uses.
public func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8))"
}
