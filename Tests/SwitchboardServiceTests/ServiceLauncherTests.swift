import Logging
import ServiceLifecycle
import SwitchboardService
import Testing

/// A runtime that must never be built: these tests stop before logging and metrics are bootstrapped.
private struct UnreachableRuntime: Service, HealthReporting {
    func run() async throws {}
    func liveness() -> HealthStatus { .healthy }
    func readiness() -> HealthStatus { .healthy }
}

@Suite struct ServiceLauncherTests {
    private func exitStatus(_ flags: [String], environment: [String: String] = [:]) async -> (status: Int32, runtimeBuilt: Bool) {
        var runtimeBuilt = false
        let status = await ServiceLauncher.run(
            defaults: .router,
            arguments: ["switchboard-router"] + flags,
            environment: environment
        ) { _, _ in
            runtimeBuilt = true
            return UnreachableRuntime()
        }
        return (status, runtimeBuilt)
    }

    @Test func invalidConfigurationExitsWithStatus2BeforeStartingAnything() async {
        let unknownFlag = await exitStatus(["--htp-port", "1"])
        #expect(unknownFlag.status == 2)
        #expect(unknownFlag.runtimeBuilt == false)

        let badValue = await exitStatus([], environment: ["SWITCHBOARD_HTTP_PORT": "ninety"])
        #expect(badValue.status == 2)
        #expect(badValue.runtimeBuilt == false)
    }

    @Test func helpExitsWithStatus0WithoutStartingAnything() async {
        let help = await exitStatus(["--help"])
        #expect(help.status == 0)
        #expect(help.runtimeBuilt == false)
    }
}
