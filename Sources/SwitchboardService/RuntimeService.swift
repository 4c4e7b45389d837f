import Logging
import ServiceLifecycle
import SwitchboardAMQP
import SwitchboardRuntime

/// One service's shard runtime as a member of the process's `ServiceGroup`, answering the health checks.
public struct RuntimeService<Adapter: ShardCoreAdapter>: Service, HealthReporting {
    public let runtime: ServiceRuntime<Adapter>

    public init(configuration: ServiceConfiguration, logger: Logger) {
        runtime = ServiceRuntime<Adapter>(configuration: configuration.runtimeConfiguration, logger: logger)
    }

    /// The runtime stops taking deliveries, finishes its batches in flight and writes its snapshots when its
    /// task is cancelled; on SIGTERM the group asks for a graceful shutdown, which becomes that cancellation.
    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await runtime.run()
        }
    }

    public func liveness() -> HealthStatus {
        runtime.readiness.isAlive ? .healthy : .unhealthy(reason: "no AMQP connection I/O thread is running")
    }

    public func readiness() -> HealthStatus {
        if runtime.readiness.isReady { return .healthy }
        switch runtime.readiness.connectionState {
        case .reconnecting(let failedAttempts)?:
            return .unhealthy(reason: "reconnecting to the broker (\(failedAttempts) failed attempts)")
        case .closed?: return .unhealthy(reason: "the broker connection is closed")
        case nil: return .unhealthy(reason: "not connected to the broker yet")
        case .connected?: break
        }
        let unreadable = runtime.readiness.unreadableJournals
        let waiting = runtime.readiness.shards.sorted { $0.key < $1.key }.compactMap { shard, phase -> String? in
            if let record = unreadable[shard] { return "shard \(shard) cannot be taken over: \(record)" }
            switch phase {
            case .starting: return "shard \(shard) starting"
            case .catchingUp: return "shard \(shard) catching up"
            case .standby, .active: return nil
            }
        }
        if waiting.isEmpty { return .unhealthy(reason: "topology not declared yet") }
        return .unhealthy(reason: waiting.joined(separator: ", "))
    }
}

extension ServiceConfiguration {
    /// The runtime's share of the configuration.
    public var runtimeConfiguration: ShardRuntimeConfiguration {
        var configuration = ShardRuntimeConfiguration(
            amqp: amqp,
            shards: shards,
            shardCount: shardCount,
            prefetch: UInt16(prefetch),
            confirmWindow: confirmWindow,
            snapshotEveryEntries: snapshotEveryEntries,
            snapshotEvery: .seconds(snapshotEverySeconds),
            pulseInterval: .milliseconds(pulseIntervalMilliseconds),
            retention: ServiceTopology.Retention(journalMaxAge: journalMaxAge),
            instanceName: instanceName
        )
        configuration.limits = limits
        if let agentCommandUsers {
            configuration.admission = RouterAdapter.admission(agentCommandUsers)
        }
        return configuration
    }
}

extension ServiceLauncher {
    /// The whole `main` of a service executable:
    /// `exit(await ServiceLauncher.run(RouterAdapter.self, defaults: .router))`.
    public static func run<Adapter: ShardCoreAdapter>(
        _ adapter: Adapter.Type,
        defaults: ServiceDefaults
    ) async -> Int32 {
        await run(defaults: defaults) { configuration, logger in
            RuntimeService<Adapter>(configuration: configuration, logger: logger)
        }
    }
}
