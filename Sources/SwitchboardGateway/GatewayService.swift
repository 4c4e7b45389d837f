import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import SwitchboardService
import UnixSignals

/// The gateway's broker side as a member of the process's `ServiceGroup`: connects, then on graceful
/// shutdown closes every page and the connection, leaving the agents' presence as it is
/// (`SignedInAgents.shutDown`).
public struct GatewayService: Service, HealthReporting {
    public let broker: GatewayBroker
    public let agents: SignedInAgents

    public init(broker: GatewayBroker, agents: SignedInAgents) {
        self.broker = broker
        self.agents = agents
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            try await broker.connect()
        }
        // Until a graceful shutdown starts (or the task is cancelled outright).
        try? await cancelWhenGracefulShutdown { [agents] in
            try await broker.watchReconnects { await agents.brokerReconnected() }
        }
        await agents.shutDown()
        await broker.close()
    }

    public func liveness() -> HealthStatus {
        broker.isAlive ? .healthy : .unhealthy(reason: "the broker connection is closed")
    }

    public func readiness() -> HealthStatus {
        broker.isConnected ? .healthy : .unhealthy(reason: "not connected to the broker")
    }
}

/// The whole `main` of `switchboard-gateway`: configuration, logging, metrics, the broker side and the
/// HTTP server in one `ServiceGroup` that shuts down gracefully on SIGTERM and SIGINT.
public enum GatewayLauncher {
    public static func run(
        arguments: [String] = CommandLine.arguments,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async -> Int32 {
        let configuration: GatewayConfiguration
        let tokens: AgentTokens
        do {
            switch try await GatewayConfigurationLoader.load(
                arguments: arguments, environment: environment, hostName: ProcessInfo.processInfo.hostName,
                processID: ProcessInfo.processInfo.processIdentifier)
            {
            case .showHelp(let text):
                print(text)
                return ServiceExitStatus.success
            case .run(let loaded):
                configuration = loaded
            }
            tokens = try AgentTokens.load(path: configuration.tokensFile)
        } catch let error as ConfigurationError {
            return refuse(error.message)
        } catch {
            return refuse("\(error)")
        }

        ServiceLogging.bootstrap(format: configuration.logFormat, level: configuration.logLevel)
        var logger = Logger(label: GatewayConfiguration.executableName)
        logger[metadataKey: "instance"] = "\(configuration.instanceName)"
        let registry = ServiceMetrics.bootstrapPrometheus()
        logger.info("starting", metadata: configuration.logMetadata.merging(["agents": "\(tokens.entries.count)"]) { $1 })

        let metrics = GatewayMetrics()
        let broker = GatewayBroker(
            amqp: configuration.amqp, instanceName: configuration.instanceName,
            graceMilliseconds: configuration.graceMilliseconds, logger: logger)
        let agents = SignedInAgents(
            broker: broker, settings: AgentSession.Settings(
                graceMs: Int64(configuration.graceMilliseconds), maxPages: configuration.maxPagesPerAgent),
            metrics: metrics, logger: logger)
        let service = GatewayService(broker: broker, agents: agents)
        let server = GatewayServer.application(
            host: configuration.httpHost, port: configuration.httpPort,
            dependencies: GatewayServer.Dependencies(
                tokens: tokens, agents: agents, broker: broker, health: service, metrics: metrics, registry: registry,
                graceMilliseconds: configuration.graceMilliseconds, heartbeatMilliseconds: configuration.heartbeatMilliseconds),
            logger: logger)
        // Either part ending shuts the other down: a page server without a broker, or the reverse, is of no use.
        var groupConfiguration = ServiceGroupConfiguration(
            services: [
                .init(
                    service: service, successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup),
                .init(
                    service: server, successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = ServiceLauncher.maximumGracefulShutdownDuration
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
            logger.info("stopped")
            return ServiceExitStatus.success
        } catch {
            logger.critical("stopped after a failure", metadata: ["error": "\(error)"])
            return ServiceExitStatus.failure
        }
    }

    private static func refuse(_ message: String) -> Int32 {
        FileHandle.standardError.write(Data("\(GatewayConfiguration.executableName): \(message)\n".utf8))
        return ServiceExitStatus.invalidConfiguration
    }
}
