import Logging
import SwitchboardAMQP
import SwitchboardCommon

/// Runs one service's configured shards over one connection.
///
/// ```swift
/// let runtime = ServiceRuntime<RouterAdapter>(configuration: configuration, logger: logger)
/// try await runtime.run()          // until the task is cancelled
/// runtime.readiness.isReady        // for /health/ready, from any thread
/// ```
///
/// Per shard: the journal is tailed from its start (hot standby). When the broker makes this instance
/// the shard queue's active consumer, its first delivery triggers the takeover: a marker is appended and
/// the journal read up to it, the effects since the last snapshot are published again, then deliveries are
/// processed in batches (journal, core, publish effects, acknowledge). Each instance pulses every shard
/// queue, so a standby is activated after a failover even without traffic, and timers fire on idle shards.
public final class ServiceRuntime<Adapter: ShardCoreAdapter>: Sendable {
    public let configuration: ShardRuntimeConfiguration
    public let readiness: Readiness
    private let logger: Logger

    public init(configuration: ShardRuntimeConfiguration, logger: Logger) {
        self.configuration = configuration
        readiness = Readiness(shards: configuration.shards)
        var logger = logger
        logger[metadataKey: "service"] = "\(Adapter.service.rawValue)"
        self.logger = logger
    }

    /// Connects, declares the topology and runs the shards until the task is cancelled. Then it stops taking
    /// deliveries, finishes the batches in flight, writes a snapshot for each active shard and closes the
    /// connection. Call it once.
    ///
    /// When the broker ends a shard's journal or queue subscription (the queue was deleted, its channel
    /// closed), the shard can neither stand by nor go on writing, and holding its queue would keep a standby
    /// from taking over. So the runtime stops the same way and throws `SubscriptionLost`; its supervisor
    /// starts it again, and the new run declares the topology and subscribes afresh. It stops the same way,
    /// throwing `JournalUnreadable`, when it is handed a shard whose journal holds a record it could not read.
    public func run() async throws {
        try await run(snapshotOnStop: true)
    }

    /// `snapshotOnStop: false` stops as a crash would leave the journal: for recovery tests.
    func run(snapshotOnStop: Bool) async throws {
        try validate()
        var amqp = configuration.amqp
        if amqp.connectionName == nil {
            amqp.connectionName = "switchboard-\(Adapter.service.rawValue) \(configuration.instanceName)"
        }
        let connection = try await AMQPConnection.connect(amqp, logger: logger)
        readiness.setConnection(connection)
        let (losses, lost) = AsyncStream.makeStream(of: (any ShardStop).self)
        var workers: [ShardWorker<Adapter>] = []
        do {
            try await checkShardCount(on: connection)
            try await connection.declare(
                ServiceTopology.topology(
                    for: Adapter.service, shards: configuration.shardCount, retention: configuration.retention))
            readiness.setTopologyDeclared()
            ShardMetrics.recordLimits(
                configuration, coreLimits: configuration.coreLimits(of: Adapter.self).named, service: Adapter.service)
            workers = try await startWorkers(on: connection, lost: lost)
        } catch {
            for worker in workers { await worker.stop() }
            await connection.close()
            throw error
        }
        logger.info("running", metadata: ["shards": "\(configuration.shards)", "instance": "\(configuration.instanceName)"])
        // The writers run until cancelled: by this task's cancellation, or here at the first shard that must stop.
        let firstLoss = await withTaskGroup(of: (any ShardStop)?.self) { group in
            for worker in workers {
                group.addTask {
                    await worker.runWriter(snapshotOnStop: snapshotOnStop)
                    return nil
                }
            }
            group.addTask { await losses.first { _ in true } }
            var firstLoss: (any ShardStop)?
            for await loss in group {
                guard let loss, firstLoss == nil else { continue }
                firstLoss = loss
                logger.error("stopping: \(loss.headline)", metadata: ["error": "\(loss)"])
                group.cancelAll()
            }
            return firstLoss
        }
        for worker in workers { await worker.stop() }
        await connection.close()
        if let firstLoss { throw firstLoss }
        logger.info("stopped")
    }

    /// Starts every configured shard's worker side by side (each finds where to read its journal from, which
    /// may take a second), in shard order; on a failure, stops those that started and throws the first error.
    private func startWorkers(
        on connection: AMQPConnection, lost: AsyncStream<any ShardStop>.Continuation
    ) async throws -> [ShardWorker<Adapter>] {
        try await withThrowingTaskGroup(of: ShardWorker<Adapter>.self) { group in
            for shard in configuration.shards {
                group.addTask { [configuration, readiness, logger] in
                    try await ShardWorker<Adapter>.start(
                        shard: shard, configuration: configuration, connection: connection, readiness: readiness,
                        lost: lost, logger: logger)
                }
            }
            var started: [ShardWorker<Adapter>] = []
            var failure: (any Error)?
            while let result = await group.nextResult() {
                switch result {
                case .success(let worker):
                    started.append(worker)
                case .failure(let error):
                    if failure == nil { group.cancelAll() }
                    failure = failure ?? error
                }
            }
            if let failure {
                for worker in started { await worker.stop() }
                throw failure
            }
            return started.sorted { $0.shard < $1.shard }
        }
    }

    /// Refuses, before anything is declared, to join a deployment of this service with another shard count
    /// (`ServiceTopology.shardCountMismatch`).
    private func checkShardCount(on connection: AMQPConnection) async throws {
        let shards = configuration.shardCount
        var existing: Set<String> = []
        for queue in ServiceTopology.shardCountWitnesses(for: Adapter.service, shards: shards) {
            if try await connection.queueStatus(queue) != nil { existing.insert(queue) }
        }
        if let mismatch = ServiceTopology.shardCountMismatch(for: Adapter.service, shards: shards, existing: existing) {
            throw InvalidConfiguration(description: mismatch)
        }
    }

    private func validate() throws(InvalidConfiguration) {
        guard configuration.shardCount > 0 else {
            throw InvalidConfiguration(description: "the shard count must be at least 1")
        }
        guard !configuration.shards.isEmpty else {
            throw InvalidConfiguration(description: "no shards configured")
        }
        for shard in configuration.shards where !(0..<configuration.shardCount).contains(shard) {
            throw InvalidConfiguration(description: "shard \(shard) is outside 0..<\(configuration.shardCount)")
        }
        guard Set(configuration.shards).count == configuration.shards.count else {
            throw InvalidConfiguration(description: "a shard is listed twice in \(configuration.shards)")
        }
        guard configuration.prefetch > 0, configuration.confirmWindow > 0, configuration.snapshotEveryEntries > 0 else {
            throw InvalidConfiguration(description: "prefetch, confirm window and snapshot interval must be at least 1")
        }
        let known = Set(Adapter.Limits.described.map(\.name))
        for (name, value) in configuration.limits.sorted(by: { $0.key < $1.key }) {
            guard known.contains(name) else {
                throw InvalidConfiguration(description: "the \(Adapter.service.rawValue) has no memory limit named \(name)")
            }
            guard value >= 1 else {
                throw InvalidConfiguration(description: "the memory limit \(name) must be at least 1")
            }
        }
    }
}

/// A runtime's configuration it cannot run with, or one that does not fit the deployment on the broker: the
/// process exits with status 2, and is not started again as after a failure.
public struct InvalidConfiguration: Error, CustomStringConvertible {
    public var description: String
}

/// Why one of its shards stops the runtime; its supervisor starts it again.
public protocol ShardStop: Error, CustomStringConvertible {
    var shard: Int { get }
    /// What the runtime logs as it stops, after `stopping: `.
    var headline: String { get }
}

/// The broker ended one of a shard's subscriptions while the runtime ran.
public struct SubscriptionLost: ShardStop {
    public let shard: Int
    public let queue: String
    public let reason: String

    public var description: String { "shard \(shard) lost its subscription to \(queue): \(reason)" }
    public var headline: String { "a shard lost a subscription" }
}

/// This instance was handed a shard (it became the consumer of its queue) whose journal holds a record it
/// could not read, and no snapshot after it: its core may lack what other instances applied.
public struct JournalUnreadable: ShardStop {
    public let shard: Int
    public let record: String

    public var description: String { "shard \(shard): \(record)" }
    public var headline: String { "handed a shard whose journal it could not read" }
}
