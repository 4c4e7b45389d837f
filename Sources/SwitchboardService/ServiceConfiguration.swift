import Logging
import SwitchboardAMQP
import SwitchboardCommon
import SwitchboardRuntime

/// What differs between the three services before any configuration is read.
public struct ServiceDefaults: Sendable, Equatable {
    /// The executable's name, used in `--help`.
    public let executableName: String
    /// The default port of the metrics and health server.
    public let httpPort: Int
    /// The default rules of `router.agentCommandUsers`; `nil` for a service that takes no agent commands
    /// (and then has no such key).
    public let agentCommandUsers: [String]?
    /// The core's memory limits, each a key `limits.<name>`, with their defaults: the runtime's
    /// (`ShardCoreAdapter.defaultLimits`), which a writer holds a shard to when none is configured.
    public let limits: [LimitDefault]

    /// A memory limit of the service's core (`CoreLimits`) and its default.
    public struct LimitDefault: Sendable, Equatable {
        public let name: String
        public let summary: String
        public let value: Int

        /// The limits of `defaults`, in their order.
        public static func of<Limits: CoreLimits>(_ defaults: Limits) -> [LimitDefault] {
            Limits.described.map { LimitDefault(name: $0.name, summary: $0.summary, value: defaults[keyPath: $0.keyPath]) }
        }

        /// The configuration key: `limits.rememberedMessages`.
        public var key: String { "limits.\(name)" }
    }

    public init(executableName: String, httpPort: Int, agentCommandUsers: [String]? = nil, limits: [LimitDefault] = []) {
        self.executableName = executableName
        self.httpPort = httpPort
        self.agentCommandUsers = agentCommandUsers
        self.limits = limits
    }

    /// The deployment's gateway user may send agent commands for every desk.
    public static let router = ServiceDefaults(
        executableName: "switchboard-router", httpPort: 9101, agentCommandUsers: ["switchboard-gateway:*"],
        limits: LimitDefault.of(RouterAdapter.defaultLimits))
    public static let notifier = ServiceDefaults(executableName: "switchboard-notifier", httpPort: 9102)
    public static let closer = ServiceDefaults(
        executableName: "switchboard-closer", httpPort: 9103, limits: LimitDefault.of(CloserAdapter.defaultLimits))

    /// The project-local development broker that `scripts/rabbitmq-node.sh` starts.
    public static let amqpURL = "amqp://switchboard:switchboard@127.0.0.1:5673/switchboard"
    public static let prefetch = 256
    public static let confirmWindow = 256
    public static let shardCount = 4
    public static let httpHost = "127.0.0.1"
    public static let snapshotEveryEntries = 1_000
    public static let snapshotEverySeconds = 30
    public static let pulseIntervalMilliseconds = 1_000
    public static let journalMaxAge = "7D"
}

/// The log output format.
public enum LogFormat: String, Sendable, Equatable, CaseIterable {
    /// One human-readable line per entry.
    case text
    /// One JSON object per line, for log collectors.
    case json
}

/// Which shards an instance consumes.
public enum ShardSelection: Sendable, Equatable {
    case all
    case some([Int])

    /// The shard numbers, in ascending order.
    public func shards(count: Int) -> [Int] {
        switch self {
        case .all: Array(0..<count)
        case .some(let shards): shards.sorted()
        }
    }
}

/// Everything a service process reads at start, validated.
public struct ServiceConfiguration: Sendable, Equatable {
    /// The broker, parsed from `amqp.url`.
    public var amqp: AMQPConfiguration
    public var prefetch: Int
    public var confirmWindow: Int
    public var shardCount: Int
    public var consumedShards: ShardSelection
    public var httpHost: String
    public var httpPort: Int
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    public var instanceName: String
    /// The JSON file the values were read from, if any.
    public var configFile: String?
    public var snapshotEveryEntries: Int
    public var snapshotEverySeconds: Int
    public var pulseIntervalMilliseconds: Int
    /// RabbitMQ `x-max-age` syntax, such as `7D`.
    public var journalMaxAge: String
    /// The broker users the Router takes agent commands from (`router.agentCommandUsers`); `nil` for the
    /// other services.
    public var agentCommandUsers: AgentCommandUsers?
    /// The core's memory limits by name (`limits.<name>`), every one the service has.
    public var limits: [String: Int]

    public init(
        amqp: AMQPConfiguration,
        prefetch: Int,
        confirmWindow: Int,
        shardCount: Int,
        consumedShards: ShardSelection,
        httpHost: String,
        httpPort: Int,
        logLevel: Logger.Level,
        logFormat: LogFormat,
        instanceName: String,
        configFile: String?,
        snapshotEveryEntries: Int,
        snapshotEverySeconds: Int,
        pulseIntervalMilliseconds: Int,
        journalMaxAge: String,
        agentCommandUsers: AgentCommandUsers? = nil,
        limits: [String: Int] = [:]
    ) {
        self.amqp = amqp
        self.prefetch = prefetch
        self.confirmWindow = confirmWindow
        self.shardCount = shardCount
        self.consumedShards = consumedShards
        self.httpHost = httpHost
        self.httpPort = httpPort
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.instanceName = instanceName
        self.configFile = configFile
        self.snapshotEveryEntries = snapshotEveryEntries
        self.snapshotEverySeconds = snapshotEverySeconds
        self.pulseIntervalMilliseconds = pulseIntervalMilliseconds
        self.journalMaxAge = journalMaxAge
        self.agentCommandUsers = agentCommandUsers
        self.limits = limits
    }

    /// The shard numbers this instance consumes, in ascending order.
    public var shards: [Int] { consumedShards.shards(count: shardCount) }

    /// Metadata to log once at start, so an operator sees the values that won.
    public var logMetadata: Logger.Metadata {
        var metadata: Logger.Metadata = [
            "amqp.url": "\(amqp.redactedDescription)",
            "shards.count": "\(shardCount)",
            "shards.consume": "\(shards.map(String.init).joined(separator: ","))",
            "http": "\(httpHost):\(httpPort)",
            "config.file": "\(configFile ?? "none")",
            "amqp.prefetch": "\(prefetch)",
            "amqp.confirmWindow": "\(confirmWindow)",
            "snapshot.everyEntries": "\(snapshotEveryEntries)",
            "snapshot.everySeconds": "\(snapshotEverySeconds)",
            "pulse.intervalMilliseconds": "\(pulseIntervalMilliseconds)",
            "journal.maxAge": "\(journalMaxAge)",
        ]
        if let agentCommandUsers {
            metadata[ConfigurationKeys.agentCommandUsers] = "\(agentCommandUsers.ruleDescription)"
        }
        for (name, value) in limits {
            metadata["limits.\(name)"] = "\(value)"
        }
        return metadata
    }
}
