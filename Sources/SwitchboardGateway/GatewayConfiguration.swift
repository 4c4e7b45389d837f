import Configuration
import Foundation
import Logging
import SwitchboardAMQP
import SwitchboardService

/// Everything the gateway reads at start, validated.
public struct GatewayConfiguration: Sendable {
    /// The broker; its user is the `user_id` of every command the gateway publishes.
    public var amqp: AMQPConfiguration
    public var httpHost: String
    public var httpPort: Int
    public var tokensFile: String
    public var graceMilliseconds: Int
    /// Pages of one agent open at once on this gateway (`AgentSession.Settings.maxPages`).
    public var maxPagesPerAgent: Int
    /// How often a page with nothing else to receive gets a heartbeat, so that it can tell a dead connection.
    public var heartbeatMilliseconds: Int
    public var instanceName: String
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    public var configFile: String?

    public init(
        amqp: AMQPConfiguration, httpHost: String = "127.0.0.1", httpPort: Int = 8080, tokensFile: String,
        graceMilliseconds: Int = GatewayConfiguration.defaultGraceMilliseconds,
        maxPagesPerAgent: Int = GatewayConfiguration.defaultMaxPagesPerAgent,
        heartbeatMilliseconds: Int = GatewayConfiguration.defaultHeartbeatMilliseconds, instanceName: String,
        logLevel: Logger.Level = .info, logFormat: LogFormat = .text, configFile: String? = nil
    ) {
        self.amqp = amqp
        self.httpHost = httpHost
        self.httpPort = httpPort
        self.tokensFile = tokensFile
        self.graceMilliseconds = graceMilliseconds
        self.maxPagesPerAgent = maxPagesPerAgent
        self.heartbeatMilliseconds = heartbeatMilliseconds
        self.instanceName = instanceName
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.configFile = configFile
    }

    public static let executableName = "switchboard-gateway"
    public static let defaultHTTPPort = 8080
    public static let defaultGraceMilliseconds = 15_000
    public static let defaultMaxPagesPerAgent = 8
    public static let defaultHeartbeatMilliseconds = 15_000

    /// Metadata to log once at start, so an operator sees the values that won.
    public var logMetadata: Logger.Metadata {
        [
            "amqp.url": "\(amqp.redactedDescription)",
            "http": "\(httpHost):\(httpPort)",
            "tokens.file": "\(tokensFile)",
            "grace.milliseconds": "\(graceMilliseconds)",
            "agent.pages": "\(maxPagesPerAgent)",
            "heartbeat.milliseconds": "\(heartbeatMilliseconds)",
            "config.file": "\(configFile ?? "none")",
        ]
    }
}

/// The gateway's keys, read the way every service reads its own (`ConfigurationLoader`): flags over
/// `SWITCHBOARD_` environment variables over the JSON file named by `config.file` over the defaults.
public enum GatewayConfigurationLoader {
    public static let tokensFile = "tokens.file"
    public static let graceMilliseconds = "grace.milliseconds"
    public static let maxPagesPerAgent = "agent.pages"
    public static let heartbeatMilliseconds = "heartbeat.milliseconds"

    public static var keys: [ConfigurationKeyDescription] {
        [
            .init(
                key: ConfigurationKeys.configFile,
                summary: "path of a JSON file with any of these keys (nested objects: {\"http\": {\"port\": 8080}})",
                defaultDescription: "none"),
            .init(
                key: ConfigurationKeys.amqpURL,
                summary: "broker URL (amqp://, or amqps:// with TLS settings in its query); its user is the user_id of the commands published",
                defaultDescription: ServiceDefaults.amqpURL),
            .init(
                key: ConfigurationKeys.httpHost, summary: "address of the page, WebSocket, health and metrics server",
                defaultDescription: ServiceDefaults.httpHost),
            .init(
                key: ConfigurationKeys.httpPort, summary: "port of that server, 0...65535 (0 picks a free port)",
                defaultDescription: String(GatewayConfiguration.defaultHTTPPort)),
            .init(
                key: tokensFile,
                summary: "JSON file of sign-in tokens: {\"agents\":[{\"token\":…,\"desk\":…,\"agent\":…,\"name\":…}]}",
                defaultDescription: "none (required)"),
            .init(
                key: graceMilliseconds,
                summary: "how long an agent stays signed in after its last page disconnected, at least 0",
                defaultDescription: String(GatewayConfiguration.defaultGraceMilliseconds)),
            .init(
                key: maxPagesPerAgent,
                summary: "pages of one agent open at once on this gateway, 1...1000; one more is refused",
                defaultDescription: String(GatewayConfiguration.defaultMaxPagesPerAgent)),
            .init(
                key: heartbeatMilliseconds,
                summary: "how often a page gets a heartbeat, 100...600000; a page that hears nothing for three reconnects",
                defaultDescription: String(GatewayConfiguration.defaultHeartbeatMilliseconds)),
            .init(
                key: ConfigurationKeys.instanceName, summary: "name of this instance in logs and in its queue names",
                defaultDescription: "hostname-pid"),
            .init(
                key: ConfigurationKeys.logLevel, summary: "trace, debug, info, notice, warning, error or critical",
                defaultDescription: "info"),
            .init(
                key: ConfigurationKeys.logFormat, summary: "text (for people) or json (one object per line)",
                defaultDescription: "text"),
        ]
    }

    public enum Request: Sendable {
        case run(GatewayConfiguration)
        case showHelp(String)
    }

    public static func load(
        arguments: [String], environment: [String: String], hostName: String, processID: Int32
    ) async throws(ConfigurationError) -> Request {
        if ConfigurationSources.asksForHelp(arguments) {
            return .showHelp(ConfigurationSources.helpText(executableName: GatewayConfiguration.executableName, keys: keys))
        }
        let (values, configFile) = try await ConfigurationSources.read(
            arguments: arguments, environment: environment, keys: keys,
            defaults: defaultValues(instanceName: "\(hostName)-\(processID)"))
        let tokens = try values.string(tokensFile)
        guard !tokens.isEmpty else {
            throw ConfigurationError("\(tokensFile) is required: the JSON file of the agents' sign-in tokens")
        }
        let instanceName = try values.nonEmptyString(ConfigurationKeys.instanceName)
        // Its agents' queues would be named like the presence queues (`GatewayBroker.presenceQueueName`).
        guard instanceName != "presence" else {
            throw ConfigurationError("\(ConfigurationKeys.instanceName) \"presence\" is reserved; choose another name")
        }
        return .run(GatewayConfiguration(
            amqp: try values.amqpConfiguration(ConfigurationKeys.amqpURL),
            httpHost: try values.nonEmptyString(ConfigurationKeys.httpHost),
            httpPort: try values.int(ConfigurationKeys.httpPort, in: 0...65_535),
            tokensFile: tokens, graceMilliseconds: try values.int(graceMilliseconds, in: 0...86_400_000),
            maxPagesPerAgent: try values.int(maxPagesPerAgent, in: 1...1_000),
            heartbeatMilliseconds: try values.int(heartbeatMilliseconds, in: 100...600_000),
            instanceName: instanceName,
            logLevel: try values.oneOf(ConfigurationKeys.logLevel, Logger.Level.self),
            logFormat: try values.oneOf(ConfigurationKeys.logFormat, LogFormat.self),
            configFile: configFile))
    }

    private static func defaultValues(instanceName: String) -> [String: ConfigContent] {
        ConfigurationSources.commonDefaults(httpPort: GatewayConfiguration.defaultHTTPPort, instanceName: instanceName)
            .merging([
                tokensFile: .string(""),
                graceMilliseconds: .int(GatewayConfiguration.defaultGraceMilliseconds),
                maxPagesPerAgent: .int(GatewayConfiguration.defaultMaxPagesPerAgent),
                heartbeatMilliseconds: .int(GatewayConfiguration.defaultHeartbeatMilliseconds),
            ]) { _, own in own }
    }
}
