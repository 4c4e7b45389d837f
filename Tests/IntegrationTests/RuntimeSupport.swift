import Foundation
import Logging
import Metrics
import Synchronization
import SwitchboardAMQP
import SwitchboardTestSupport
import SwitchboardCommon
@testable import SwitchboardRuntime
import Testing

/// Gives each test a list of the services it starts and stops those still running when the test ends,
/// passed or failed. A runtime left running by a failed test would hold the single active consumer of the
/// shard queues the next test needs, and fail that test too.
struct StopsServicesTrait: SuiteTrait, TestTrait, TestScoping {
    final class Started: Sendable {
        private let stops = Mutex<[@Sendable () async -> Void]>([])

        func add(_ stop: @escaping @Sendable () async -> Void) {
            stops.withLock { $0.append(stop) }
        }

        func stopAll() async {
            for stop in stops.withLock({ $0 }).reversed() { await stop() }
        }
    }

    struct Missing: Error, CustomStringConvertible {
        var description: String { "this test has no .stopsServices trait" }
    }

    @TaskLocal static var current: Started?

    var isRecursive: Bool { true }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: () async throws -> Void) async throws {
        guard testCase != nil else { return try await function() }
        let started = Started()
        do {
            try await Self.$current.withValue(started) { try await function() }
        } catch {
            await started.stopAll()
            throw error
        }
        await started.stopAll()
    }
}

extension Trait where Self == StopsServicesTrait {
    /// Every service a test starts is stopped when the test ends, however it ends.
    static var stopsServices: StopsServicesTrait { StopsServicesTrait() }
}

/// A `ServiceRuntime` running in a task of its own, stopped by cancelling that task. Only tests with the
/// `.stopsServices` trait start them.
struct RunningService<Adapter: ShardCoreAdapter>: Sendable {
    let runtime: ServiceRuntime<Adapter>
    private let task: Task<Void, any Error>
    /// How `run` ended, once it has.
    private let outcome: Outcome

    private final class Outcome: Sendable {
        let result = Mutex<Result<Void, any Error>?>(nil)
    }

    /// Starts a runtime on `shards` of `shardCount` with short pulses; `snapshotOnStop: false` stops like a crash.
    /// Snapshots are due after `snapshotEveryEntries` entries (and at takeovers and stops), not after a time;
    /// `snapshotEveryBatch` makes one due after every batch with anything new, encoded on the writer's path so
    /// that it is appended as soon as it is begun.
    /// A Router is given `routerAdmission` unless `admission` is set, as `switchboard-router` is given
    /// `--agent-command-users`.
    static func start(
        _ broker: TestBroker, name: String, shards: [Int] = [0, 1], shardCount: Int = 2, snapshotEveryEntries: Int = 1_000,
        snapshotEveryBatch: Bool = false, snapshotOnStop: Bool = true, admission: (@Sendable (JournalInput) -> String?)? = nil,
        retention: ServiceTopology.Retention = ServiceTopology.Retention(), metricsFactory: (any MetricsFactory)? = nil,
        operationTimeout: Duration? = nil, journalMessageBytes: Int? = nil, limits: [String: Int] = [:]
    ) throws -> RunningService {
        guard let started = StopsServicesTrait.current else {
            throw StopsServicesTrait.Missing()
        }
        var amqp = try broker.configuration()
        amqp.connectionName = name
        if let operationTimeout { amqp.operationTimeout = operationTimeout }
        var configuration = ShardRuntimeConfiguration(
            amqp: amqp, shards: shards, shardCount: shardCount, snapshotEveryEntries: snapshotEveryEntries,
            pulseInterval: .milliseconds(200), catchUpTimeout: .seconds(20), retention: retention, instanceName: name,
            metricsFactory: metricsFactory)
        if let journalMessageBytes { configuration.journalMessageBytes = journalMessageBytes }
        configuration.limits = limits
        if snapshotEveryBatch {
            configuration.snapshotEvery = .zero
            configuration.encodesSnapshotsInline = true
        } else {
            // Snapshots by count only: a test that takes long on a busy machine appends none it did not ask for.
            configuration.snapshotEvery = .seconds(3_600)
        }
        if let admission {
            configuration.admission = admission
        } else if Adapter.service == .router {
            configuration.admission = routerAdmission
        }
        let runtime = ServiceRuntime<Adapter>(configuration: configuration, logger: Logger(label: "switchboard.test.\(name)"))
        let outcome = Outcome()
        let task = Task {
            do {
                try await runtime.run(snapshotOnStop: snapshotOnStop)
                outcome.result.withLock { $0 = .success(()) }
            } catch {
                outcome.result.withLock { $0 = .failure(error) }
                throw error
            }
        }
        started.add {
            task.cancel()
            _ = try? await task.value
        }
        return RunningService(runtime: runtime, task: task, outcome: outcome)
    }

    /// Waits until the topology is declared and every shard is a tailing standby or active.
    func waitUntilReady(timeout: Duration = .seconds(30)) async throws {
        try await waitUntil("the runtime is ready", timeout: timeout) { runtime.readiness.isReady }
    }

    /// Waits until every shard of this instance is in `phase`.
    func waitUntilEveryShard(_ phase: Readiness.ShardPhase, timeout: Duration = .seconds(30)) async throws {
        try await waitUntil("every shard is \(phase)", timeout: timeout) {
            let shards = runtime.readiness.shards
            return !shards.isEmpty && shards.values.allSatisfy { $0 == phase }
        }
    }

    /// Waits until the runtime has stopped, by itself or after `cancel()`, and returns the error it threw
    /// (`nil` when it returned).
    func waitUntilItStops(timeout: Duration = .seconds(30)) async throws -> (any Error)? {
        try await waitUntil("the runtime stops", timeout: timeout) { outcome.result.withLock { $0 != nil } }
        guard case .failure(let error) = outcome.result.withLock({ $0 }) else { return nil }
        return error
    }

    /// Asks the runtime to stop, as SIGTERM does, without waiting (`waitUntilItStops`).
    func cancel() {
        task.cancel()
    }

    /// Cancels the runtime and waits until it has stopped.
    func stop() async throws {
        cancel()
        try await task.value
    }
}

/// The broker user of the tests' connections (`TestBroker.configuration`), allowed to send agent commands
/// for every desk; `switchboard-ops` has write access to `switchboard.in` and no rule.
let routerAdmission = RouterAdapter.admission(try! AgentCommandUsers(rules: ["switchboard:*"]))

/// Builds inbound messages for one desk with unique ids.
final class InboundFactory: Sendable {
    let desk: DeskID
    private let counter = Atomic<Int>(0)

    init(deskPrefix: String) {
        desk = try! DeskID("\(deskPrefix)-\(UUID().uuidString.prefix(8))")
    }

    func message(_ body: InboundBody) -> InboundMessage {
        let number = counter.add(1, ordering: .relaxed).newValue
        let id = try! MessageID("\(desk.rawValue)-m\(number)")
        return InboundMessage(id: id, desk: desk, at: ShardWorker<RouterAdapter>.wallClock(), body: body)
    }

    /// The message as the tests' connections publish it, with their broker user as `user_id`.
    func wire(_ body: InboundBody, as user: String = "switchboard") -> WireMessage {
        try! WireCodec.outgoing(message(body)).publishedAs(user)
    }
}

/// A test client of one fresh desk: its connection, a collector of every Router event, a publisher, and the
/// desk's message factory. `name` names the connection and prefixes the desk.
func deskClient(_ broker: TestBroker, name: String) async throws -> (
    connection: AMQPConnection, events: Collector, publisher: AMQPPublisher, desk: InboundFactory
) {
    let connection = try await broker.connect(name: "\(name)-client")
    let events = try await Collector.bind(connection, exchange: ContractExchange.events.rawValue)
    return (connection, events, try await connection.publisher(), InboundFactory(deskPrefix: name))
}

/// Collects what arrives on a queue of its own bound to an exchange, for tests to wait on.
final class Collector: Sendable {
    private final class Received: Sendable {
        let deliveries = Mutex<[AMQPDelivery]>([])
    }

    private let received = Received()
    private let task: Task<Void, Never>

    /// Binds a fresh exclusive queue to `exchange` with `routingKey` and collects from it.
    static func bind(_ connection: AMQPConnection, exchange: String, routingKey: String = "#") async throws -> Collector {
        let queue = uniqueName("collect")
        try await connection.declare(Topology(
            queues: [.init(queue, exclusive: true, autoDelete: true)],
            bindings: [.init(from: exchange, to: .queue(queue), routingKey: routingKey)]))
        return try await Collector(consumer: connection.consume(queue: queue, prefetch: 1_000))
    }

    init(consumer: AMQPConsumer) {
        let received = received
        task = Task {
            do {
                for try await delivery in consumer {
                    try delivery.ack()
                    received.deliveries.withLock { $0.append(delivery) }
                }
            } catch {
                Issue.record("collector ended: \(error)")
            }
        }
    }

    deinit { task.cancel() }

    var deliveries: [AMQPDelivery] { received.deliveries.withLock { $0 } }

    /// Router events of `desk`, in arrival order, with their message ids.
    func routerEvents(desk: DeskID) -> [(id: String, event: RouterEvent)] {
        deliveries.compactMap { delivery in
            guard let decoded = try? WireCodec.decodeRouterEvent(Data(delivery.body)), decoded.message.desk == desk else {
                return nil
            }
            return (decoded.id.rawValue, decoded.message)
        }
    }

    /// Waits until `desk` has an event matching `matches`, and returns the first one.
    @discardableResult
    func waitForEvent(
        desk: DeskID, _ description: String, timeout: Duration = .seconds(30),
        sourceLocation: SourceLocation = #_sourceLocation, where matches: (RouterEvent) -> Bool
    ) async throws -> (id: String, event: RouterEvent) {
        var found: (id: String, event: RouterEvent)?
        try await waitUntil(description, timeout: timeout, sourceLocation: sourceLocation) {
            found = routerEvents(desk: desk).first { matches($0.event) }
            return found != nil
        }
        return found!
    }
}

extension RouterEventBody {
    var offerMade: (agent: AgentID, offer: OfferToken, conversation: ConversationID)? {
        guard case .offerMade(let conversation, _, let agent, let offer, _, _, _) = self else { return nil }
        return (agent, offer, conversation)
    }

    var isOfferExpired: Bool {
        if case .offerExpired = self { return true }
        return false
    }

    var isAssigned: Bool {
        if case .conversationAssigned = self { return true }
        return false
    }
}

/// Message ids of Router effects: `router.<shard>.<seq>.<effect index>`.
func isJournalPositionID(_ id: String) -> Bool {
    let parts = id.split(separator: ".")
    return parts.count == 4 && parts[0] == "router" && parts.dropFirst().allSatisfy { UInt64($0) != nil }
}
