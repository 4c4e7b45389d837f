import Configuration
import Foundation
import Logging
import SwitchboardAMQP
import SwitchboardCommon
import SystemPackage

/// A configuration value that cannot be used; the process prints it and exits with status 2.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// What the command line asks for.
public enum ConfigurationRequest: Sendable, Equatable {
    case run(ServiceConfiguration)
    case showHelp(String)
}

/// Reads the configuration through one `ConfigReader` whose providers are, from strongest to weakest:
/// command line flags, environment variables (`SWITCHBOARD_` prefix), the JSON file named by
/// `config.file`, and the defaults.
public enum ConfigurationLoader {
    /// - Parameters:
    ///   - arguments: The command line, program name first.
    ///   - environment: The process environment.
    ///   - hostName, processID: Make the default instance name.
    public static func load(
        defaults: ServiceDefaults,
        arguments: [String],
        environment: [String: String],
        hostName: String,
        processID: Int32
    ) async throws(ConfigurationError) -> ConfigurationRequest {
        let keys = ConfigurationKeys.all(defaults: defaults)
        if ConfigurationSources.asksForHelp(arguments) {
            return .showHelp(ConfigurationSources.helpText(executableName: defaults.executableName, keys: keys))
        }
        let (values, configFile) = try await ConfigurationSources.read(
            arguments: arguments, environment: environment, keys: keys,
            defaults: defaultValues(defaults: defaults, instanceName: "\(hostName)-\(processID)"))

        let configuration = ServiceConfiguration(
            amqp: try values.amqpConfiguration(ConfigurationKeys.amqpURL),
            prefetch: try values.int(ConfigurationKeys.amqpPrefetch, in: 1...65_535),
            confirmWindow: try values.int(ConfigurationKeys.amqpConfirmWindow, atLeast: 1),
            shardCount: try values.int(ConfigurationKeys.shardsCount, in: 1...1_024),
            consumedShards: try values.shardSelection(ConfigurationKeys.shardsConsume),
            httpHost: try values.nonEmptyString(ConfigurationKeys.httpHost),
            httpPort: try values.int(ConfigurationKeys.httpPort, in: 0...65_535),
            logLevel: try values.oneOf(ConfigurationKeys.logLevel, Logger.Level.self),
            logFormat: try values.oneOf(ConfigurationKeys.logFormat, LogFormat.self),
            instanceName: try values.nonEmptyString(ConfigurationKeys.instanceName),
            configFile: configFile,
            snapshotEveryEntries: try values.int(ConfigurationKeys.snapshotEveryEntries, atLeast: 1),
            snapshotEverySeconds: try values.int(ConfigurationKeys.snapshotEverySeconds, atLeast: 1),
            pulseIntervalMilliseconds: try values.int(ConfigurationKeys.pulseIntervalMilliseconds, atLeast: 10),
            journalMaxAge: try validMaxAge(values.string(ConfigurationKeys.journalMaxAge)),
            agentCommandUsers: defaults.agentCommandUsers == nil
                ? nil : try values.agentCommandUsers(ConfigurationKeys.agentCommandUsers),
            limits: try limits(defaults, values)
        )
        for shard in configuration.shards where shard >= configuration.shardCount {
            throw ConfigurationError(
                "invalid \(ConfigurationKeys.shardsConsume): shard \(shard) does not exist"
                    + " with \(ConfigurationKeys.shardsCount) = \(configuration.shardCount)"
            )
        }
        return .run(configuration)
    }

    private static func limits(
        _ defaults: ServiceDefaults, _ values: ConfiguredValues
    ) throws(ConfigurationError) -> [String: Int] {
        var limits: [String: Int] = [:]
        for limit in defaults.limits {
            limits[limit.name] = try values.int(limit.key, atLeast: 1)
        }
        return limits
    }

    // MARK: - Defaults

    private static func defaultValues(defaults: ServiceDefaults, instanceName: String) -> [String: ConfigContent] {
        var values = ConfigurationSources.commonDefaults(httpPort: defaults.httpPort, instanceName: instanceName)
        values.merge([
            ConfigurationKeys.amqpPrefetch: .int(ServiceDefaults.prefetch),
            ConfigurationKeys.amqpConfirmWindow: .int(ServiceDefaults.confirmWindow),
            ConfigurationKeys.shardsCount: .int(ServiceDefaults.shardCount),
            ConfigurationKeys.shardsConsume: .stringArray(["all"]),
            ConfigurationKeys.snapshotEveryEntries: .int(ServiceDefaults.snapshotEveryEntries),
            ConfigurationKeys.snapshotEverySeconds: .int(ServiceDefaults.snapshotEverySeconds),
            ConfigurationKeys.pulseIntervalMilliseconds: .int(ServiceDefaults.pulseIntervalMilliseconds),
            ConfigurationKeys.journalMaxAge: .string(ServiceDefaults.journalMaxAge),
        ]) { _, own in own }
        if let agentCommandUsers = defaults.agentCommandUsers {
            values[ConfigurationKeys.agentCommandUsers] = .stringArray(agentCommandUsers)
        }
        for limit in defaults.limits {
            values[limit.key] = .int(limit.value)
        }
        return values
    }

    // MARK: - Reading and validating

    private static func validMaxAge(_ value: String) throws(ConfigurationError) -> String {
        let units: Set<Character> = ["Y", "M", "D", "h", "m", "s"]
        guard let unit = value.last, units.contains(unit),
            let amount = Int(value.dropLast()), amount > 0
        else {
            throw ConfigurationError(
                "invalid \(ConfigurationKeys.journalMaxAge): \"\(value)\""
                    + " is not a positive number followed by Y, M, D, h, m or s"
            )
        }
        return value
    }
}

/// Where every program of the project reads its configuration from, strongest first: command line flags,
/// `SWITCHBOARD_` environment variables, the JSON file named by `config.file`, and the defaults. Unknown
/// flags and unknown file keys are errors, so a misspelling never leaves a default in force silently.
public enum ConfigurationSources {
    /// The defaults of the keys every program has: config file, broker URL, HTTP server, instance name
    /// and logging.
    public static func commonDefaults(httpPort: Int, instanceName: String) -> [String: ConfigContent] {
        [
            ConfigurationKeys.configFile: .string(""),
            ConfigurationKeys.amqpURL: .string(ServiceDefaults.amqpURL),
            ConfigurationKeys.httpHost: .string(ServiceDefaults.httpHost),
            ConfigurationKeys.httpPort: .int(httpPort),
            ConfigurationKeys.instanceName: .string(instanceName),
            ConfigurationKeys.logLevel: .string(Logger.Level.info.rawValue),
            ConfigurationKeys.logFormat: .string(LogFormat.text.rawValue),
        ]
    }

    public static func asksForHelp(_ arguments: [String]) -> Bool {
        let options = arguments.dropFirst()
        return options.contains("--help") || options.contains("-h")
    }

    /// - Parameters:
    ///   - arguments: The command line, program name first.
    ///   - keys: Every key the program reads, each with a value in `defaults`.
    /// - Returns: The values, and the config file that was read, if any.
    public static func read(
        arguments: [String], environment: [String: String], keys: [ConfigurationKeyDescription],
        defaults: [String: ConfigContent]
    ) async throws(ConfigurationError) -> (values: ConfiguredValues, configFile: String?) {
        try rejectUnknownFlags(Array(arguments.dropFirst()), keys: keys)
        let flags = CommandLineArgumentsProvider(arguments: arguments).mapKeys { key in
            for (name, flagName) in ConfigurationKeys.shortFlags where key == AbsoluteConfigKey(ConfigKey(name)) {
                return AbsoluteConfigKey(ConfigKey(flagName))
            }
            return key
        }
        let variables = EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: "switchboard")
        var defaultValues: [AbsoluteConfigKey: ConfigValue] = [:]
        for (key, content) in defaults {
            // The broker URL may hold a password: keep it out of swift-configuration's access log.
            defaultValues[AbsoluteConfigKey(ConfigKey(key))] = ConfigValue(content, isSecret: key == ConfigurationKeys.amqpURL)
        }
        let defaultsProvider = InMemoryProvider(name: "defaults", values: defaultValues)

        let configFile = try ConfiguredValues(ConfigReader(providers: [flags, variables, defaultsProvider]))
            .string(ConfigurationKeys.configFile)
        var providers: [any ConfigProvider] = [flags, variables]
        if !configFile.isEmpty {
            providers.append(try await jsonFileProvider(path: configFile, keys: keys))
        }
        providers.append(defaultsProvider)
        return (ConfiguredValues(ConfigReader(providers: providers)), configFile.isEmpty ? nil : configFile)
    }

    /// The `--help` text: every key with its flag, environment variable and default.
    public static func helpText(executableName: String, keys: [ConfigurationKeyDescription]) -> String {
        var lines = [
            "Usage: \(executableName) [--flag value]...",
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

    /// A misspelled flag would otherwise be ignored silently and the default would win.
    private static func rejectUnknownFlags(
        _ options: [String],
        keys: [ConfigurationKeyDescription]
    ) throws(ConfigurationError) {
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

    /// Environment variables are shared with other programs, so unknown `SWITCHBOARD_` names are not
    /// errors; a file belongs to this service alone, so an unknown key in it is.
    private static func jsonFileProvider(
        path: String,
        keys: [ConfigurationKeyDescription]
    ) async throws(ConfigurationError) -> any ConfigProvider {
        let contents: Data
        do {
            contents = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigurationError("cannot read config file \(path): \(error.localizedDescription)")
        }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: contents)
        } catch {
            throw ConfigurationError("config file \(path) is not valid JSON")
        }
        guard let object = parsed as? [String: Any] else {
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
            if let nested = value as? [String: Any] {
                return leafKeys(of: nested, prefix: key)
            }
            return [key]
        }
    }
}

/// Reads typed values from the one `ConfigReader` and turns every problem into a message that names the key.
///
/// Every key has a default, so a value is always found; the reader's `required` methods are used because
/// they throw when a source holds a value of the wrong type, where the others would silently fall back.
public struct ConfiguredValues: Sendable {
    let reader: ConfigReader

    init(_ reader: ConfigReader) {
        self.reader = reader
    }

    /// The broker settings from an `amqp://` or `amqps://` URL.
    public func amqpConfiguration(_ key: String) throws(ConfigurationError) -> AMQPConfiguration {
        let url = try string(key, isSecret: true)
        do {
            return try AMQPConfiguration(url: url)
        } catch {
            if case .invalidURL(_, let reason) = error {
                throw ConfigurationError("invalid \(key): \(reason)")
            }
            throw ConfigurationError("invalid \(key): \(error)")
        }
    }

    /// - Parameter isSecret: Keeps the value out of swift-configuration's access log
    ///   (`CONFIG_ACCESS_LOG_FILE`); the broker URL holds a password.
    public func string(_ key: String, isSecret: Bool = false) throws(ConfigurationError) -> String {
        do {
            return try reader.requiredString(forKey: ConfigKey(key), isSecret: isSecret)
        } catch {
            throw ConfigurationError("invalid \(key): \(error)")
        }
    }

    public func nonEmptyString(_ key: String) throws(ConfigurationError) -> String {
        let value = try string(key)
        guard !value.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ConfigurationError("invalid \(key): it is empty")
        }
        return value
    }

    public func int(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let value = try int(key)
        guard range.contains(value) else {
            throw ConfigurationError("invalid \(key): \(value) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    public func int(_ key: String, atLeast minimum: Int) throws(ConfigurationError) -> Int {
        let value = try int(key)
        guard value >= minimum else {
            throw ConfigurationError("invalid \(key): \(value) is below the minimum \(minimum)")
        }
        return value
    }

    public func oneOf<Value: CaseIterable & RawRepresentable<String>>(
        _ key: String,
        _ type: Value.Type
    ) throws(ConfigurationError) -> Value {
        let value = try string(key)
        guard let parsed = Value(rawValue: value) else {
            let accepted = Value.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError("invalid \(key): \"\(value)\" is not one of \(accepted)")
        }
        return parsed
    }

    /// Flags and environment give a comma-separated list; the file may hold `"all"`, a list of
    /// numbers or a list of strings, so each shape is tried in turn.
    func shardSelection(_ key: String) throws(ConfigurationError) -> ShardSelection {
        let configKey = ConfigKey(key)
        let words: [String]
        if let strings = try? reader.requiredStringArray(forKey: configKey) {
            words = strings
        } else if let numbers = try? reader.requiredIntArray(forKey: configKey) {
            words = numbers.map(String.init)
        } else if let word = try? reader.requiredString(forKey: configKey) {
            words = [word]
        } else {
            throw ConfigurationError("invalid \(key): expected \"all\" or a list of shard numbers")
        }
        let trimmed = words.map { $0.trimmingCharacters(in: .whitespaces) }
        if trimmed == ["all"] { return .all }
        var shards: [Int] = []
        for word in trimmed {
            guard let shard = Int(word), shard >= 0 else {
                throw ConfigurationError(
                    "invalid \(key): \"\(word)\" is not a shard number (expected \"all\" or a list such as 0,2)"
                )
            }
            guard !shards.contains(shard) else {
                throw ConfigurationError("invalid \(key): shard \(shard) is listed twice")
            }
            shards.append(shard)
        }
        guard !shards.isEmpty else {
            throw ConfigurationError("invalid \(key): the list is empty")
        }
        return .some(shards)
    }

    /// Flags and environment give a comma-separated list; the file may hold a list or one string. Commas
    /// inside the elements are split too, so that `a:*,b:*` can never be read as one rule for user `a:*,b`.
    func agentCommandUsers(_ key: String) throws(ConfigurationError) -> AgentCommandUsers {
        let configKey = ConfigKey(key)
        let elements: [String]
        if let strings = try? reader.requiredStringArray(forKey: configKey) {
            elements = strings
        } else if let word = try? reader.requiredString(forKey: configKey) {
            elements = [word]
        } else {
            throw ConfigurationError("invalid \(key): expected a list of user:desk rules such as switchboard-gateway:*")
        }
        let rules = elements.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        do {
            return try AgentCommandUsers(rules: rules)
        } catch {
            throw ConfigurationError("invalid \(key): \(error)")
        }
    }

    private func int(_ key: String) throws(ConfigurationError) -> Int {
        do {
            return try reader.requiredInt(forKey: ConfigKey(key))
        } catch {
            throw ConfigurationError("invalid \(key): \(error)")
        }
    }
}
