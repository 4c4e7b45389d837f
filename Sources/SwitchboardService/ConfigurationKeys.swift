/// Every configuration key a service reads, with the names it has in each source.
///
/// The table is the one place that knows the keys: loading, validation of flags and file keys,
/// and `--help` all read it, so a key cannot be readable without also being documented.
public struct ConfigurationKeyDescription: Sendable, Equatable {
    /// The dotted key, as in the JSON file (`http.port` is `{"http": {"port": 9101}}`).
    public let key: String
    /// What the value means and which values are accepted.
    public let summary: String
    /// The default, as shown in `--help`.
    public let defaultDescription: String

    public init(key: String, summary: String, defaultDescription: String) {
        self.key = key
        self.summary = summary
        self.defaultDescription = defaultDescription
    }

    /// The command line flag: `http.port` is `--http-port`, `amqp.confirmWindow` is `--amqp-confirm-window`.
    /// The exceptions (`ConfigurationKeys.shortFlags`) drop a first word that the command already says:
    /// `config.file` is `--config`, the Router's `router.agentCommandUsers` is `--agent-command-users`.
    public var flag: String {
        "--" + Self.wordsOfKey(ConfigurationKeys.shortFlags[key] ?? key).joined(separator: "-").lowercased()
    }

    /// The environment variable: `http.port` is `SWITCHBOARD_HTTP_PORT`.
    public var environmentVariable: String {
        (["SWITCHBOARD"] + Self.wordsOfKey(key)).joined(separator: "_").uppercased()
    }

    /// Splits `amqp.confirmWindow` into `amqp`, `confirm`, `Window`, the way swift-configuration's
    /// command line and environment key encoders do.
    private static func wordsOfKey(_ key: String) -> [String] {
        key.split(separator: ".").flatMap { component -> [String] in
            var words: [String] = []
            var current = ""
            var previous: Character?
            for character in component {
                if let previous, previous.isLowercase, character.isUppercase {
                    words.append(current)
                    current = ""
                }
                current.append(character)
                previous = character
            }
            words.append(current)
            return words
        }
    }
}

/// The keys, as constants, and their descriptions in the order `--help` lists them.
public enum ConfigurationKeys {
    public static let amqpURL = "amqp.url"
    public static let amqpPrefetch = "amqp.prefetch"
    public static let amqpConfirmWindow = "amqp.confirmWindow"
    public static let shardsCount = "shards.count"
    public static let shardsConsume = "shards.consume"
    public static let httpHost = "http.host"
    public static let httpPort = "http.port"
    public static let logLevel = "log.level"
    public static let logFormat = "log.format"
    public static let instanceName = "instance.name"
    public static let configFile = "config.file"
    public static let snapshotEveryEntries = "snapshot.everyEntries"
    public static let snapshotEverySeconds = "snapshot.everySeconds"
    public static let pulseIntervalMilliseconds = "pulse.intervalMilliseconds"
    public static let journalMaxAge = "journal.maxAge"
    public static let agentCommandUsers = "router.agentCommandUsers"

    /// The keys whose command line flag is made from another name than the key itself.
    static let shortFlags = [configFile: "config", agentCommandUsers: "agentCommandUsers"]

    /// All keys, for `--help` and for rejecting unknown flags and file keys.
    public static func all(defaults: ServiceDefaults) -> [ConfigurationKeyDescription] {
        var keys: [ConfigurationKeyDescription] = [
            .init(
                key: configFile,
                summary: "path of a JSON file with any of these keys (nested objects: {\"http\": {\"port\": 9101}})",
                defaultDescription: "none"
            ),
            .init(
                key: amqpURL,
                summary: "broker URL (amqp://, or amqps:// with TLS settings in its query: cacertfile, certfile, keyfile, verify)",
                defaultDescription: ServiceDefaults.amqpURL
            ),
            .init(
                key: amqpPrefetch,
                summary: "deliveries in flight per shard, 1...65535",
                defaultDescription: String(ServiceDefaults.prefetch)
            ),
            .init(
                key: amqpConfirmWindow,
                summary: "unconfirmed publishes in flight, at least 1",
                defaultDescription: String(ServiceDefaults.confirmWindow)
            ),
            .init(
                key: shardsCount,
                summary: "number of shards of every service, at least 1",
                defaultDescription: String(ServiceDefaults.shardCount)
            ),
            .init(
                key: shardsConsume,
                summary: "shards this instance consumes: \"all\" or a list such as 0,2",
                defaultDescription: "all"
            ),
            .init(
                key: httpHost,
                summary: "address of the metrics and health server",
                defaultDescription: ServiceDefaults.httpHost
            ),
            .init(
                key: httpPort,
                summary: "port of the metrics and health server, 0...65535 (0 picks a free port)",
                defaultDescription: String(defaults.httpPort)
            ),
            .init(
                key: logLevel,
                summary: "trace, debug, info, notice, warning, error or critical",
                defaultDescription: "info"
            ),
            .init(
                key: logFormat,
                summary: "text (for people) or json (one object per line)",
                defaultDescription: "text"
            ),
            .init(
                key: instanceName,
                summary: "name of this instance in logs and on the broker",
                defaultDescription: "hostname-pid"
            ),
            .init(
                key: snapshotEveryEntries,
                summary: "fewest journal entries between two snapshots of a shard, at least 1 (a snapshot also waits until the journal has grown by the size of the last one)",
                defaultDescription: String(ServiceDefaults.snapshotEveryEntries)
            ),
            .init(
                key: snapshotEverySeconds,
                summary: "seconds between two snapshots of a busy shard, at least 1",
                defaultDescription: String(ServiceDefaults.snapshotEverySeconds)
            ),
            .init(
                key: pulseIntervalMilliseconds,
                summary: "milliseconds between two pulses to each shard queue, at least 10",
                defaultDescription: String(ServiceDefaults.pulseIntervalMilliseconds)
            ),
            .init(
                key: journalMaxAge,
                summary: "how long journal streams keep entries, RabbitMQ x-max-age syntax (7D, 12h, 30m), for journals created from then on (one that exists keeps its own); a broker policy's max-age wins over it",
                defaultDescription: ServiceDefaults.journalMaxAge
            ),
        ]
        for limit in defaults.limits {
            keys.append(.init(key: limit.key, summary: "\(limit.summary), at least 1", defaultDescription: String(limit.value)))
        }
        if let agentCommandUsers = defaults.agentCommandUsers {
            keys.append(
                .init(
                    key: ConfigurationKeys.agentCommandUsers,
                    summary: "broker users allowed to send agent commands (checked against the AMQP user_id),"
                        + " a list of user:desk rules where desk may be * for every desk",
                    defaultDescription: agentCommandUsers.joined(separator: ",")
                ))
        }
        return keys
    }
}
