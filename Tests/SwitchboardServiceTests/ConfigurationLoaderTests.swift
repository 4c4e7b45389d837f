import Foundation
import Logging
import SwitchboardAMQP
import SwitchboardCommon
import SwitchboardRuntime
import SwitchboardService
import Testing

@Suite struct ConfigurationLoaderTests {
    private func load(
        _ flags: [String] = [],
        environment: [String: String] = [:],
        defaults: ServiceDefaults = .router
    ) async throws(ConfigurationError) -> ServiceConfiguration {
        let request = try await ConfigurationLoader.load(
            defaults: defaults,
            arguments: [defaults.executableName] + flags,
            environment: environment,
            hostName: "host",
            processID: 42
        )
        switch request {
        case .run(let configuration): return configuration
        case .showHelp: throw ConfigurationError("expected a configuration, got the help text")
        }
    }

    private func loadError(_ flags: [String] = [], environment: [String: String] = [:]) async -> String? {
        do {
            _ = try await load(flags, environment: environment)
            return nil
        } catch {
            return error.message
        }
    }

    private let files: ConfigFiles

    init() throws {
        files = try ConfigFiles()
    }

    @Test func defaultsWhenNothingIsSet() async throws {
        let configuration = try await load(defaults: .closer)
        #expect(
            configuration
                == ServiceConfiguration(
                    amqp: try AMQPConfiguration(url: "amqp://switchboard:switchboard@127.0.0.1:5673/switchboard"),
                    prefetch: 256,
                    confirmWindow: 256,
                    shardCount: 4,
                    consumedShards: .all,
                    httpHost: "127.0.0.1",
                    httpPort: 9103,
                    logLevel: .info,
                    logFormat: .text,
                    instanceName: "host-42",
                    configFile: nil,
                    snapshotEveryEntries: 1_000,
                    snapshotEverySeconds: 30,
                    pulseIntervalMilliseconds: 1_000,
                    journalMaxAge: "7D",
                    limits: ["unassignedConversations": 100_000, "endedConversations": 1_000_000]
                )
        )
        #expect(configuration.shards == [0, 1, 2, 3])
    }

    @Test func eachServiceHasItsOwnDefaultPort() async throws {
        #expect(try await load(defaults: .router).httpPort == 9101)
        #expect(try await load(defaults: .notifier).httpPort == 9102)
        #expect(try await load(defaults: .closer).httpPort == 9103)
    }

    @Test func flagsBeatEnvironmentWhichBeatsFileWhichBeatsDefaults() async throws {
        let file = try files.write(
            """
            {"http": {"port": 1111, "host": "0.0.0.0"}, "log": {"level": "debug", "format": "json"},
             "shards": {"count": 8}, "instance": {"name": "from-file"}}
            """
        )
        let configuration = try await load(
            ["--config", file, "--http-port", "3333"],
            environment: ["SWITCHBOARD_HTTP_PORT": "2222", "SWITCHBOARD_LOG_LEVEL": "warning", "SWITCHBOARD_INSTANCE_NAME": "from-env"]
        )
        #expect(configuration.httpPort == 3333)
        #expect(configuration.logLevel == .warning)
        #expect(configuration.instanceName == "from-env")
        #expect(configuration.shardCount == 8)
        #expect(configuration.httpHost == "0.0.0.0")
        #expect(configuration.logFormat == .json)
        #expect(configuration.prefetch == 256)
        #expect(configuration.configFile == file)
    }

    @Test func theFileCanBeNamedInTheEnvironment() async throws {
        let file = try files.write(#"{"amqp": {"url": "amqp://u:p@broker:5672/v"}}"#)
        let configuration = try await load(environment: ["SWITCHBOARD_CONFIG_FILE": file])
        #expect(configuration.amqp == (try AMQPConfiguration(url: "amqp://u:p@broker:5672/v")))
    }

    @Test func camelCaseKeysAreDashedFlagsAndUnderscoredVariables() async throws {
        let configuration = try await load(
            ["--snapshot-every-entries", "50", "--amqp-url=amqp://a:b@h/v"],
            environment: ["SWITCHBOARD_AMQP_CONFIRM_WINDOW": "32", "SWITCHBOARD_PULSE_INTERVAL_MILLISECONDS": "250", "SWITCHBOARD_JOURNAL_MAX_AGE": "12h"]
        )
        #expect(configuration.snapshotEveryEntries == 50)
        #expect(configuration.confirmWindow == 32)
        #expect(configuration.pulseIntervalMilliseconds == 250)
        #expect(configuration.journalMaxAge == "12h")
        #expect(configuration.amqp == (try AMQPConfiguration(url: "amqp://a:b@h/v")))
    }

    @Test func consumedShardsFromEverySource() async throws {
        #expect(try await load(["--shards-consume", "2,0"]).consumedShards == .some([2, 0]))
        #expect(try await load(["--shards-consume", "2,0"]).shards == [0, 2])
        #expect(try await load(environment: ["SWITCHBOARD_SHARDS_CONSUME": "1,3"]).consumedShards == .some([1, 3]))
        #expect(try await load(environment: ["SWITCHBOARD_SHARDS_CONSUME": "all"]).consumedShards == .all)
        let numbers = try files.write(#"{"shards": {"consume": [1, 3]}}"#)
        #expect(try await load(["--config", numbers]).consumedShards == .some([1, 3]))
        let strings = try files.write(#"{"shards": {"consume": ["0", "2"]}}"#)
        #expect(try await load(["--config", strings]).consumedShards == .some([0, 2]))
        let all = try files.write(#"{"shards": {"consume": "all"}}"#)
        #expect(try await load(["--config", all, "--shards-count", "2"]).shards == [0, 1])
    }

    @Test func invalidValuesAreRejectedWithTheKeyNamed() async throws {
        #expect(await loadError(["--http-port", "abc"]) == "invalid http.port: Config value for key '--http-port' failed to convert to type int.")
        #expect(await loadError(["--http-port", "70000"]) == "invalid http.port: 70000 is outside 0...65535")
        #expect(
            await loadError(environment: ["SWITCHBOARD_SHARDS_COUNT": "four"])
                == "invalid shards.count: Config value for key 'SWITCHBOARD_SHARDS_COUNT' failed to convert to type int."
        )
        #expect(await loadError(["--log-level", "loud"]) == "invalid log.level: \"loud\" is not one of trace, debug, info, notice, warning, error, critical")
        #expect(await loadError(["--log-format", "xml"]) == "invalid log.format: \"xml\" is not one of text, json")
        #expect(await loadError(["--shards-consume", "0,9"]) == "invalid shards.consume: shard 9 does not exist with shards.count = 4")
        #expect(await loadError(["--shards-consume", "0,x"]) == "invalid shards.consume: \"x\" is not a shard number (expected \"all\" or a list such as 0,2)")
        #expect(await loadError(["--shards-consume", "1,1"]) == "invalid shards.consume: shard 1 is listed twice")
        #expect(await loadError(["--amqp-prefetch", "0"]) == "invalid amqp.prefetch: 0 is outside 1...65535")
        #expect(await loadError(["--pulse-interval-milliseconds", "5"]) == "invalid pulse.intervalMilliseconds: 5 is below the minimum 10")
        #expect(await loadError(["--amqp-url", "http://host"]) == "invalid amqp.url: scheme must be amqp or amqps, not 'http'")
        #expect(await loadError(["--amqp-url", "amqp://h/a/b"]) == "invalid amqp.url: the vhost must be one path segment; write '/' inside it as %2F")
        #expect(
            await loadError(["--journal-max-age", "7days"])
                == "invalid journal.maxAge: \"7days\" is not a positive number followed by Y, M, D, h, m or s"
        )
        #expect(await loadError(["--instance-name", " "]) == "invalid instance.name: it is empty")
    }

    @Test func unknownFlagsAndStrayArgumentsAreRejected() async throws {
        #expect(await loadError(["--htp-port", "1"]) == "unknown flag --htp-port (see --help for the keys)")
        #expect(await loadError(["9101"]) == "unexpected argument 9101: every value follows a --flag (see --help)")
        #expect(await loadError(["--http-port=1", "2"]) == "unexpected argument 2: every value follows a --flag (see --help)")
    }

    @Test func unknownVariablesWithThePrefixAreLeftAlone() async throws {
        let configuration = try await load(environment: ["SWITCHBOARD_TEST_ROOT": "/tmp/x"])
        #expect(configuration.httpPort == 9101)
    }

    @Test func unusableFilesAreRejected() async throws {
        let unknownKey = try files.write(#"{"http": {"prot": 1}}"#)
        #expect(await loadError(["--config", unknownKey]) == "unknown key http.prot in config file \(unknownKey) (see --help for the keys)")
        let notJSON = try files.write("port = 1")
        #expect(await loadError(["--config", notJSON]) == "config file \(notJSON) is not valid JSON")
        let wrongType = try files.write(#"{"http": {"port": "9101"}}"#)
        #expect(await loadError(["--config", wrongType]) == "invalid http.port: Config value for key 'http.port' failed to convert to type int.")
        let missing = "/nonexistent/switchboard.json"
        let missingError = await loadError(["--config", missing])
        #expect(missingError?.hasPrefix("cannot read config file \(missing): ") == true)
    }

    @Test func memoryLimitsAreTheCoresOwnUnlessSetAndEachServiceHasOnlyItsOwn() async throws {
        #expect(try await load(defaults: .router).limits == RouterAdapter.defaultLimits.named)
        #expect(try await load(defaults: .closer).limits == CloserAdapter.defaultLimits.named)
        #expect(try await load(defaults: .notifier).limits.isEmpty)
        let file = try files.write(#"{"limits": {"rememberedOffersPerDesk": 500}}"#)
        let configuration = try await load(
            ["--config", file, "--limits-remembered-messages", "20000"],
            environment: ["SWITCHBOARD_LIMITS_REMEMBERED_OFFERS_PER_DESK": "700"])
        #expect(configuration.limits == ["rememberedMessages": 20_000, "rememberedOffersPerDesk": 700])
        #expect(configuration.runtimeConfiguration.limits == configuration.limits)
        #expect(try await load(["--config", file]).limits["rememberedOffersPerDesk"] == 500)
        #expect(
            await loadError(["--limits-remembered-messages", "0"])
                == "invalid limits.rememberedMessages: 0 is below the minimum 1")
        let closerFlag = "--limits-ended-conversations"
        await #expect(throws: ConfigurationError("unknown flag \(closerFlag) (see --help for the keys)")) {
            try await load([closerFlag, "5"], defaults: .router)
        }
    }

    @Test func helpListsEveryKeyWithItsFlagAndVariable() async throws {
        let request = try await ConfigurationLoader.load(
            defaults: .notifier,
            arguments: ["switchboard-notifier", "--http-port", "1", "--help"],
            environment: [:],
            hostName: "host",
            processID: 1
        )
        guard case .showHelp(let text) = request else {
            Issue.record("expected the help text")
            return
        }
        #expect(text.hasPrefix("Usage: switchboard-notifier"))
        for key in ConfigurationKeys.all(defaults: .notifier) {
            #expect(text.contains(key.flag))
            #expect(text.contains(key.environmentVariable))
            #expect(text.contains("file key: \(key.key)"))
        }
        #expect(text.contains("--config <value>    SWITCHBOARD_CONFIG_FILE"))
        #expect(text.contains("--amqp-confirm-window <value>    SWITCHBOARD_AMQP_CONFIRM_WINDOW"))
        #expect(text.contains("(default: 9102)"))
    }
}
