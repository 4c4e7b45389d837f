import Logging
import SwitchboardAMQP

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
    public struct InvalidConfiguration: Error, CustomStringConvertible {
        public var description: String
    }

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
        var workers: [ShardWorker<Adapter>] = []
        do {
            try await connection.declare(
                ServiceTopology.topology(
                    for: Adapter.service, shards: configuration.shardCount, retention: configuration.retention))
            readiness.setTopologyDeclared()
            ShardMetrics.recordLimits(configuration, service: Adapter.service)
            for shard in configuration.shards {
                workers.append(
                    try await ShardWorker<Adapter>.start(
                        shard: shard, configuration: configuration, connection: connection, readiness: readiness,
                        logger: logger))
            }
        } catch {
            for worker in workers { await worker.stop() }
            await connection.close()
            throw error
        }
        logger.info("running", metadata: ["shards": "\(configuration.shards)", "instance": "\(configuration.instanceName)"])
        await withTaskGroup(of: Void.self) { group in
            for worker in workers {
                group.addTask { await worker.runWriter(snapshotOnStop: snapshotOnStop) }
            }
        }
        for worker in workers { await worker.stop() }
        await connection.close()
        logger.info("stopped")
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
    }
}
