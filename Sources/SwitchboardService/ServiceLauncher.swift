import Foundation
import Logging
import ServiceLifecycle
import SwitchboardRuntime
import UnixSignals

/// Exit statuses of a service process.
public enum ServiceExitStatus {
    public static let success: Int32 = 0
    /// The service ran and failed.
    public static let failure: Int32 = 1
    /// The configuration was unusable, or did not fit the deployment on the broker (`InvalidConfiguration`);
    /// nothing was started, and starting again as it is would fail again.
    public static let invalidConfiguration: Int32 = 2
}

/// Runs a service process: configuration, logging, metrics, the runtime and the operations server in
/// one `ServiceGroup` that shuts down gracefully on SIGTERM and SIGINT.
public enum ServiceLauncher {
    /// How long the runtime has to finish its in-flight batch and write snapshots before it is cancelled.
    public static let maximumGracefulShutdownDuration: Duration = .seconds(30)

    /// Returns the process exit status; `main` passes it to `exit`.
    ///
    /// - Parameter makeRuntime: Builds the shard runtime from the validated configuration. Called
    ///   after logging and metrics are bootstrapped, so its instruments record into `/metrics`.
    public static func run<Runtime: Service & HealthReporting>(
        defaults: ServiceDefaults,
        arguments: [String] = CommandLine.arguments,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        makeRuntime: (ServiceConfiguration, Logger) throws -> Runtime
    ) async -> Int32 {
        let configuration: ServiceConfiguration
        do {
            switch try await ConfigurationLoader.load(
                defaults: defaults,
                arguments: arguments,
                environment: environment,
                hostName: ProcessInfo.processInfo.hostName,
                processID: ProcessInfo.processInfo.processIdentifier
            ) {
            case .showHelp(let text):
                print(text)
                return ServiceExitStatus.success
            case .run(let loaded):
                configuration = loaded
            }
        } catch {
            FileHandle.standardError.write(Data("\(defaults.executableName): \(error.message)\n".utf8))
            return ServiceExitStatus.invalidConfiguration
        }

        ServiceLogging.bootstrap(format: configuration.logFormat, level: configuration.logLevel)
        var logger = Logger(label: defaults.executableName)
        logger[metadataKey: "instance"] = "\(configuration.instanceName)"
        let registry = ServiceMetrics.bootstrapPrometheus()
        logger.info("starting", metadata: configuration.logMetadata)

        let runtime: Runtime
        do {
            runtime = try makeRuntime(configuration, logger)
        } catch {
            logger.critical("the runtime could not be created", metadata: ["error": "\(error)"])
            return ServiceExitStatus.failure
        }
        let server = OperationsServer.application(
            host: configuration.httpHost,
            port: configuration.httpPort,
            health: runtime,
            registry: registry,
            logger: logger
        )
        // Either service ending, by returning or by failing, shuts the other down gracefully: a
        // runtime without its health endpoint, or the reverse, is of no use to an operator.
        let group = ServiceGroup(
            configuration: makeGroupConfiguration(runtime: runtime, server: server, logger: logger)
        )
        do {
            try await group.run()
            logger.info("stopped")
            return ServiceExitStatus.success
        } catch let error as InvalidConfiguration {
            logger.critical("stopped: the configuration does not fit", metadata: ["error": "\(error)"])
            return ServiceExitStatus.invalidConfiguration
        } catch {
            logger.critical("stopped after a failure", metadata: ["error": "\(error)"])
            return ServiceExitStatus.failure
        }
    }

    private static func makeGroupConfiguration(
        runtime: some Service,
        server: some Service,
        logger: Logger
    ) -> ServiceGroupConfiguration {
        var configuration = ServiceGroupConfiguration(
            services: [
                .init(
                    service: runtime,
                    successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup
                ),
                .init(
                    service: server,
                    successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup
                ),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        configuration.maximumGracefulShutdownDuration = maximumGracefulShutdownDuration
        return configuration
    }
}
