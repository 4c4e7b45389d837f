import SwitchboardAMQP
import SwitchboardGateway
import SwitchboardService
import Testing

@Suite struct GatewayConfigurationTests {
    private func load(_ arguments: [String], environment: [String: String] = [:]) async throws -> GatewayConfiguration {
        let request = try await GatewayConfigurationLoader.load(
            arguments: ["switchboard-gateway"] + arguments, environment: environment, hostName: "host", processID: 7)
        guard case .run(let configuration) = request else {
            Issue.record("expected a configuration, got help")
            throw ConfigurationError("help")
        }
        return configuration
    }

    @Test func theFlagsTheBrowserSuitePassesAreRead() async throws {
        let configuration = try await load([
            "--amqp-url", "amqp://switchboard-gateway:secret@127.0.0.1:5999/switchboard",
            "--http-host", "127.0.0.1", "--http-port", "8123", "--tokens-file", "/tmp/tokens.json",
            "--grace-milliseconds", "2000", "--instance-name", "gw-1",
        ])
        #expect(configuration.amqp.user == "switchboard-gateway")
        #expect(configuration.amqp.port == 5999)
        #expect(configuration.httpHost == "127.0.0.1")
        #expect(configuration.httpPort == 8123)
        #expect(configuration.tokensFile == "/tmp/tokens.json")
        #expect(configuration.graceMilliseconds == 2_000)
        #expect(configuration.instanceName == "gw-1")
    }

    @Test func defaultsAndTheEnvironmentFillWhatTheFlagsLeaveOut() async throws {
        let configuration = try await load(
            ["--tokens-file", "/tmp/a.json"], environment: ["SWITCHBOARD_GRACE_MILLISECONDS": "500"])
        #expect(configuration.httpPort == 8080)
        #expect(configuration.graceMilliseconds == 500)
        #expect(configuration.instanceName == "host-7")
    }

    @Test func aMissingTokensFileOrAnUnknownFlagStopsTheStart() async {
        await #expect(throws: ConfigurationError.self) { try await load([]) }
        await #expect(throws: ConfigurationError.self) { try await load(["--tokens-file", "t.json", "--grace", "5"]) }
        await #expect(throws: ConfigurationError.self) {
            try await load(["--tokens-file", "t.json", "--grace-milliseconds", "-1"])
        }
        // Its agents' queues would be the presence queues.
        await #expect(throws: ConfigurationError.self) {
            try await load(["--tokens-file", "t.json", "--instance-name", "presence"])
        }
    }
}
