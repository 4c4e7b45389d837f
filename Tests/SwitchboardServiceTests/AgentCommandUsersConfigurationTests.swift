import Foundation
import SwitchboardCommon
import SwitchboardService
import Testing

/// The Router's `router.agentCommandUsers`: who may send agent commands for which desks.
@Suite struct AgentCommandUsersConfigurationTests {
    private let files: ConfigFiles

    init() throws {
        files = try ConfigFiles()
    }

    private func load(
        _ flags: [String] = [], environment: [String: String] = [:], defaults: ServiceDefaults = .router
    ) async throws(ConfigurationError) -> ServiceConfiguration {
        switch try await ConfigurationLoader.load(
            defaults: defaults, arguments: [defaults.executableName] + flags, environment: environment,
            hostName: "host", processID: 42)
        {
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

    @Test func theRouterAllowsTheDeploymentsGatewayUserByDefaultAndTheOtherServicesHaveNoSuchKey() async throws {
        #expect(try await load().agentCommandUsers == AgentCommandUsers(rules: ["switchboard-gateway:*"]))
        #expect(try await load(defaults: .notifier).agentCommandUsers == nil)
        #expect(try await load(defaults: .closer).agentCommandUsers == nil)
        #expect(!ConfigurationKeys.all(defaults: .closer).contains { $0.key == ConfigurationKeys.agentCommandUsers })
        #expect(await loadError(["--agent-command-users", "x:*"]) == nil)
        do {
            _ = try await load(["--agent-command-users", "x:*"], defaults: .notifier)
            Issue.record("the Notifier took --agent-command-users")
        } catch {
            #expect(error.message == "unknown flag --agent-command-users (see --help for the keys)")
        }
    }

    @Test func theFlagIsShortTheVariableAndFileKeyAreFull() throws {
        let key = try #require(ConfigurationKeys.all(defaults: .router).first { $0.key == "router.agentCommandUsers" })
        #expect(key.flag == "--agent-command-users")
        #expect(key.environmentVariable == "SWITCHBOARD_ROUTER_AGENT_COMMAND_USERS")
        #expect(key.defaultDescription == "switchboard-gateway:*")
    }

    @Test func rulesFromEverySource() async throws {
        let expected = try AgentCommandUsers(rules: ["switchboard:*", "gateway-acme:acme"])
        #expect(try await load(["--agent-command-users", "switchboard:*,gateway-acme:acme"]).agentCommandUsers == expected)
        #expect(
            try await load(environment: ["SWITCHBOARD_ROUTER_AGENT_COMMAND_USERS": "switchboard:*,gateway-acme:acme"])
                .agentCommandUsers == expected)
        let path = try files.write(#"{"router": {"agentCommandUsers": ["switchboard:*", "gateway-acme:acme"]}}"#)
        #expect(try await load(["--config", path]).agentCommandUsers == expected)
    }

    @Test func aMalformedRuleStopsTheStartWithTheRuleNamed() async {
        #expect(
            await loadError(["--agent-command-users", "switchboard:*,gateway"])
                == "invalid router.agentCommandUsers: rule \"gateway\" is not of the form user:desk"
                + " (or user:* for every desk)")
        #expect(
            await loadError(environment: ["SWITCHBOARD_ROUTER_AGENT_COMMAND_USERS": "gw:no such desk"])
                == "invalid router.agentCommandUsers: rule \"gw:no such desk\": \"no such desk\" is neither *"
                + " nor a desk id ([A-Za-z0-9_-]{1,64})")
    }
}
