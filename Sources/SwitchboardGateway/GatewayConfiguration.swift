import Configuration
import Foundation
import Logging
import SwitchboardAMQP
import SwitchboardService
import SystemPackage

/// Everything the gateway reads at start, validated.
public struct GatewayConfiguration: Sendable {
    /// The broker; its user is the `user_id` of every command the gateway publishes.
    public var amqp: AMQPConfiguration
    public var httpHost: String
    public var httpPort: Int
    public var tokensFile: String
    public var graceMilliseconds: Int
    public var instanceName: String
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    public var configFile: String?

    public init(
        amqp: AMQPConfiguration, httpHost: String = "127.0.0.1", httpPort: Int = 8080, tokensFile: String,
        graceMilliseconds: Int = GatewayConfiguration.defaultGraceMilliseconds, instanceName: String,
        logLevel: Logger.Level = .info, logFormat: LogFormat = .text, configFile: String? = nil
    ) {
        self.amqp = amqp
        self.httpHost = httpHost
        self.httpPort = httpPort
        self.tokensFile = tokensFile
        self.graceMilliseconds = graceMilliseconds
        self.instanceName = instanceName
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.configFile = configFile
    }

    public static let executableName = "switchboard-gateway"
    public static let defaultHTTPPort = 8080
    public static let defaultGraceMilliseconds = 15_000

    /// Metadata to log once at start, so an operator sees the values that won.
    public var logMetadata: Logger.Metadata {
        [
            "amqp.url": "\(amqp.redactedDescription)",
            "http": "\(httpHost):\(httpPort)",
            "tokens.file": "\(tokensFile)",
            "grace.milliseconds": "\(graceMilliseconds)",
            "config.file": "\(configFile ?? "none")",
        ]
    }
}

/// The gateway's keys, read the way every service reads its own (`ConfigurationLoader`): flags over
/// `SWITCHBOARD_` environment variables over the JSON file named by `config.file` over the defaults.
public enum GatewayConfigurationLoader {
    public static let tokensFile = "tokens.file"
    public static let graceMilliseconds = "grace.milliseconds"

    /// One key with its names in each source. (The services' `ConfigurationKeyDescription` cannot be made
    /// outside their module; these keys have no camel-case words, so the names follow from the dots.)
    public struct Key: Sendable, Equatable {
        public let key: String
        public let summary: String
        public let defaultDescription: String

        init(key: String, summary: String, defaultDescription: String) {
            self.key = key
            self.summary = summary
            self.defaultDescription = defaultDescription
        }

        /// `tokens.file` is `--tokens-file`; `config.file` is `--config`, as for the services.
        public var flag: String {
            key == ConfigurationKeys.configFile ? "--config" : "--" + key.replacingOccurrences(of: ".", with: "-")
        }

        /// `tokens.file` is `SWITCHBOARD_TOKENS_FILE`.
        public var environmentVariable: String {
            "SWITCHBOARD_" + key.replacingOccurrences(of: ".", with: "_").uppercased()
        }
    }

    public static var keys: [Key] {
        [
            .init(
                key: ConfigurationKeys.configFile,
                summary: "path of a JSON file with any of these keys (nested objects: {\"http\": {\"port\": 8080}})",
                defaultDescription: "none"),
            .init(
                key: ConfigurationKeys.amqpURL,
                summary: "broker URL (amqp:// or amqps://); its user is the user_id of the commands published",
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
        let options = Array(arguments.dropFirst())
        if options.contains("--help") || options.contains("-h") {
            return .showHelp(helpText)
        }
        try rejectUnknownFlags(options)

        let flags = CommandLineArgumentsProvider(arguments: arguments).mapKeys { key in
            key == AbsoluteConfigKey(ConfigKey(ConfigurationKeys.configFile)) ? ["config"] : key
        }
        let variables = EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: "switchboard")
        let defaults = InMemoryProvider(name: "defaults", values: defaultValues(instanceName: "\(hostName)-\(processID)"))
        let configFile = try Values(ConfigReader(providers: [flags, variables, defaults])).string(ConfigurationKeys.configFile)
        var providers: [any ConfigProvider] = [flags, variables]
        if !configFile.isEmpty {
            providers.append(try await jsonFileProvider(path: configFile))
        }
        providers.append(defaults)
        let values = Values(ConfigReader(providers: providers))

        let url = try values.string(ConfigurationKeys.amqpURL, isSecret: true)
        let amqp: AMQPConfiguration
        do {
            amqp = try AMQPConfiguration(url: url)
        } catch {
            throw ConfigurationError("invalid \(ConfigurationKeys.amqpURL): \(error)")
        }
        let tokens = try values.string(tokensFile)
        guard !tokens.isEmpty else {
            throw ConfigurationError("\(tokensFile) is required: the JSON file of the agents' sign-in tokens")
        }
        let level = try values.string(ConfigurationKeys.logLevel)
        guard let logLevel = Logger.Level(rawValue: level) else {
            throw ConfigurationError("invalid \(ConfigurationKeys.logLevel): \"\(level)\"")
        }
        let format = try values.string(ConfigurationKeys.logFormat)
        guard let logFormat = LogFormat(rawValue: format) else {
            throw ConfigurationError("invalid \(ConfigurationKeys.logFormat): \"\(format)\" is not text or json")
        }
        let host = try values.string(ConfigurationKeys.httpHost)
        let instance = try values.string(ConfigurationKeys.instanceName)
        guard !host.isEmpty, !instance.isEmpty else {
            throw ConfigurationError("\(ConfigurationKeys.httpHost) and \(ConfigurationKeys.instanceName) may not be empty")
        }
        return .run(GatewayConfiguration(
            amqp: amqp, httpHost: host, httpPort: try values.int(ConfigurationKeys.httpPort, in: 0...65_535),
            tokensFile: tokens, graceMilliseconds: try values.int(graceMilliseconds, in: 0...86_400_000),
            instanceName: instance, logLevel: logLevel, logFormat: logFormat,
            configFile: configFile.isEmpty ? nil : configFile))
    }

    public static var helpText: String {
        var lines = [
            "Usage: \(GatewayConfiguration.executableName) [--flag value]...",
            "",
            "Every key can be set in a JSON file (--config), in the environment or as a flag.",
            "Flags win over the environment, the environment over the file, the file over the defaults.",
            "",
        ]
        for key in keys {
            lines.append("  \(key.flag) <value>    \(key.environmentVariable)    file key: \(key.key)")
            lines.append("      \(key.summary) (default: \(key.defaultDescription))")
        }
        lines.append("  --help")
        lines.append("      print this text and exit")
        return lines.joined(separator: "\n")
    }

    private static func defaultValues(instanceName: String) -> [AbsoluteConfigKey: ConfigValue] {
        func key(_ name: String) -> AbsoluteConfigKey { AbsoluteConfigKey(ConfigKey(name)) }
        func value(_ content: ConfigContent) -> ConfigValue { ConfigValue(content, isSecret: false) }
        return [
            key(ConfigurationKeys.configFile): value(.string("")),
            key(ConfigurationKeys.amqpURL): ConfigValue(.string(ServiceDefaults.amqpURL), isSecret: true),
            key(ConfigurationKeys.httpHost): value(.string(ServiceDefaults.httpHost)),
            key(ConfigurationKeys.httpPort): value(.int(GatewayConfiguration.defaultHTTPPort)),
            key(tokensFile): value(.string("")),
            key(graceMilliseconds): value(.int(GatewayConfiguration.defaultGraceMilliseconds)),
            key(ConfigurationKeys.instanceName): value(.string(instanceName)),
            key(ConfigurationKeys.logLevel): value(.string(Logger.Level.info.rawValue)),
            key(ConfigurationKeys.logFormat): value(.string(LogFormat.text.rawValue)),
        ]
    }

    /// A misspelled flag would otherwise be ignored silently and the default would win.
    private static func rejectUnknownFlags(_ options: [String]) throws(ConfigurationError) {
        let known = Set(keys.map(\.flag))
        var expectsValue = false
        for option in options {
            if option.hasPrefix("--") {
                let flag = String(option.prefix { $0 != "=" })
                guard known.contains(flag) else {
                    throw ConfigurationError("unknown flag \(flag) (see --help for the keys)")
                }
                expectsValue = !option.contains("=")
            } else if !expectsValue {
                throw ConfigurationError("unexpected argument \(option): every value follows a --flag (see --help)")
            }
        }
    }

    private static func jsonFileProvider(path: String) async throws(ConfigurationError) -> any ConfigProvider {
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("cannot read config file \(path)")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: contents)) as? [String: Any] else {
            throw ConfigurationError("config file \(path) must hold a JSON object")
        }
        let known = Set(keys.map(\.key))
        for fileKey in leafKeys(of: object).sorted() where !known.contains(fileKey) {
            throw ConfigurationError("unknown key \(fileKey) in config file \(path) (see --help for the keys)")
        }
        do {
            return try await FileProvider<JSONSnapshot>(filePath: FilePath(path))
        } catch {
            throw ConfigurationError("cannot use config file \(path): \(error)")
        }
    }

    private static func leafKeys(of object: [String: Any], prefix: String = "") -> [String] {
        object.flatMap { name, value -> [String] in
            let key = prefix.isEmpty ? name : "\(prefix).\(name)"
            if let nested = value as? [String: Any] { return leafKeys(of: nested, prefix: key) }
            return [key]
        }
    }

    /// Typed reads that name the key in every error; `required` reads throw on a value of the wrong type
    /// where the others would fall back to the default silently.
    private struct Values {
        let reader: ConfigReader

        init(_ reader: ConfigReader) {
            self.reader = reader
        }

        func string(_ key: String, isSecret: Bool = false) throws(ConfigurationError) -> String {
            do {
                return try reader.requiredString(forKey: ConfigKey(key), isSecret: isSecret)
            } catch {
                throw ConfigurationError("invalid \(key): \(error)")
            }
        }

        func int(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
            let value: Int
            do {
                value = try reader.requiredInt(forKey: ConfigKey(key))
            } catch {
                throw ConfigurationError("invalid \(key): \(error)")
            }
            guard range.contains(value) else {
                throw ConfigurationError("invalid \(key): \(value) is outside \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
    }
}
